//! Where an event goes on the bus, written once: aggregate type → pillar, event type → action,
//! and from those the CloudEvents `type`/`source` and the NATS subject.
//!
//! ```
//! use bus::Route;
//! let route = Route::of("task", "TaskCreated");
//! assert_eq!(route.event_type(), "tasks.created");
//! assert_eq!(route.source(), "lifeos/tasks");
//! assert_eq!(route.subject("lifeos.events"), "lifeos.events.tasks.created");
//! ```

/// The default subject prefix of published events: `lifeos.events.<pillar>.<action>`.
pub const SUBJECT_PREFIX: &str = "lifeos.events";

/// The pillar and action of one event: both valid NATS subject tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pillar: String,
    action: String,
}

impl Route {
    /// The route of an event of type `event_type` (e.g. `TaskCompleted`) on an aggregate of type
    /// `aggregate_type` (e.g. `task`): pillar `tasks`, action `completed`.
    pub fn of(aggregate_type: &str, event_type: &str) -> Self {
        Self {
            pillar: pillar_of(aggregate_type),
            action: action_of(aggregate_type, event_type),
        }
    }

    /// The pillar, e.g. `tasks`.
    pub fn pillar(&self) -> &str {
        &self.pillar
    }

    /// The action, e.g. `completed`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The CloudEvents `type`: `<pillar>.<action>`.
    pub fn event_type(&self) -> String {
        format!("{}.{}", self.pillar, self.action)
    }

    /// The CloudEvents `source`: `lifeos/<pillar>`.
    pub fn source(&self) -> String {
        format!("lifeos/{}", self.pillar)
    }

    /// The NATS subject under `prefix`: `<prefix>.<pillar>.<action>`.
    pub fn subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}.{}", self.pillar, self.action)
    }
}

/// The pillar of an aggregate type ([`aggregates::pillar_of`]: `task` → `tasks`, else the type
/// itself), as a subject token.
///
/// ```
/// assert_eq!(bus::routing::pillar_of("task"), "tasks");
/// assert_eq!(bus::routing::pillar_of("habit"), "habits");
/// ```
pub fn pillar_of(aggregate_type: &str) -> String {
    subject_token(aggregates::pillar_of(aggregate_type))
}

/// The action of an event: its type without the aggregate's CamelCase prefix, in snake_case, as
/// a subject token. A type without that prefix is converted whole.
///
/// ```
/// use bus::routing::action_of;
/// assert_eq!(action_of("task", "TaskCreated"), "created");
/// assert_eq!(action_of("habit_log", "HabitLogEntryAdded"), "entry_added");
/// assert_eq!(action_of("task", "Archived"), "archived");
/// ```
pub fn action_of(aggregate_type: &str, event_type: &str) -> String {
    let prefix = camel_case(aggregate_type);
    let rest = event_type
        .strip_prefix(prefix.as_str())
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(event_type);
    subject_token(&snake_case(rest))
}

/// `raw` as one valid NATS subject token: ASCII letters, digits, `_` and `-` are kept, anything
/// else (`.`, `*`, `>`, whitespace, non-ASCII…) becomes `_`; an empty token becomes `_`.
///
/// ```
/// assert_eq!(bus::routing::subject_token("a.b*c >d"), "a_b_c__d");
/// assert_eq!(bus::routing::subject_token(""), "_");
/// ```
pub fn subject_token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".to_string();
    }
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `subject` is a valid NATS subject to publish to or to prefix: non-empty tokens
/// separated by `.`, without wildcards, whitespace or control characters.
///
/// ```
/// assert!(bus::routing::is_valid_subject("lifeos.events"));
/// assert!(!bus::routing::is_valid_subject("lifeos..events"));
/// assert!(!bus::routing::is_valid_subject("lifeos.>"));
/// ```
pub fn is_valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '*' && c != '>')
        })
}

/// `task` → `Task`, `habit_log` → `HabitLog`: the prefix event types of an aggregate carry.
fn camel_case(aggregate_type: &str) -> String {
    aggregate_type
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// `EntryAdded` → `entry_added`, `HTTPCallMade` → `http_call_made`.
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_events_route_to_the_tasks_pillar() {
        for (event, action) in [
            ("TaskCreated", "created"),
            ("TaskUpdated", "updated"),
            ("TaskCompleted", "completed"),
            ("TaskReopened", "reopened"),
            ("TaskDeleted", "deleted"),
        ] {
            let route = Route::of("task", event);
            assert_eq!(route.pillar(), "tasks");
            assert_eq!(route.action(), action);
            assert_eq!(route.event_type(), format!("tasks.{action}"));
            assert_eq!(
                route.subject(SUBJECT_PREFIX),
                format!("lifeos.events.tasks.{action}")
            );
        }
        assert_eq!(Route::of("task", "TaskCreated").source(), "lifeos/tasks");
    }

    #[test]
    fn unknown_aggregate_types_are_their_own_pillar() {
        let route = Route::of("focus_session", "FocusSessionStarted");
        assert_eq!(route.pillar(), "focus_session");
        assert_eq!(route.action(), "started");
    }

    #[test]
    fn the_prefix_is_stripped_only_at_a_word_boundary() {
        assert_eq!(action_of("task", "Taskforce"), "taskforce");
        assert_eq!(action_of("task", "Task"), "task");
        assert_eq!(action_of("task", "SubtaskAdded"), "subtask_added");
        assert_eq!(action_of("task", "TaskDueDateChanged"), "due_date_changed");
        assert_eq!(
            action_of("account", "AccountHTTPKeyAdded"),
            "http_key_added"
        );
        assert_eq!(action_of("sleep", "SleepLogged2Times"), "logged2_times");
    }

    #[test]
    fn subject_tokens_are_sanitised() {
        assert_eq!(subject_token("tasks"), "tasks");
        assert_eq!(subject_token("my.pillar"), "my_pillar");
        assert_eq!(subject_token("a*b>c"), "a_b_c");
        assert_eq!(subject_token("with space\ttab"), "with_space_tab");
        assert_eq!(subject_token("ünïcode"), "_n_code");
        assert_eq!(subject_token(""), "_");
        // A hostile aggregate or event type still yields exactly four tokens.
        let route = Route::of("evil.>", "Do.*Thing");
        let subject = route.subject(SUBJECT_PREFIX);
        assert!(is_valid_subject(&subject), "{subject}");
        assert_eq!(subject.split('.').count(), 4, "{subject}");
        assert_eq!(subject, "lifeos.events.evil__.do__thing");
    }

    #[test]
    fn subjects_are_validated() {
        assert!(is_valid_subject("lifeos.events"));
        assert!(is_valid_subject("t0123abc.events"));
        for bad in [
            "", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a.b>", "a\tb",
        ] {
            assert!(!is_valid_subject(bad), "{bad:?} should be refused");
        }
    }
}

//! A user's connection to one external calendar source (aggregate type `calendar_source`,
//! aggregate id [`source_id`] = `<user id>:<source>`): which external UIDs it brought in, as
//! which calendar events, with which content hash.
//!
//! **Why it exists.** Imports must be idempotent (re-importing the same file writes nothing) and
//! must notice deletions (an event gone from the file is cancelled). Both need the previous
//! import's UIDs and hashes, and "an external UID maps to one event per user and source" is an
//! invariant across events, so it lives here, not in [`crate::calendar::CalendarEvent`].
//!
//! **A sync is two steps.** [`SourceCommand::PlanSync`] compares what the source holds now with
//! what was recorded and records the plan ([`SourceEvent::SyncPlanned`]: created / updated /
//! removed UIDs with their event ids); the API then applies it to the `calendar_event`
//! aggregates (create-or-update, cancel — each idempotent) and records
//! [`SourceCommand::CompleteSync`]. If applying stops half way, the source stays *pending*, and
//! the next plan re-applies every entry whatever its hash, so nothing is lost.
//!
//! **Plug-in point for Google Calendar (a later issue).** ICS imports are *full* syncs
//! (`full: true`): every UID the source holds is listed and the missing ones are removed. An
//! incremental source (Google's `events.list` with a `syncToken`) sends `full: false` with the
//! changed entries, the UIDs it reports deleted in `deleted`, and its next token in
//! `sync_token`, which is kept here ([`CalendarSource::sync_token`]) for the next call. When
//! Google invalidates the token (HTTP 410), the adapter does a full resync: `full: true` with
//! every event and `sync_token: None` first, then the new token — deletions are detected the
//! same way as for ICS.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};

/// The longest source name, in characters.
pub const SOURCE_MAX_CHARS: usize = 100;
/// The longest external id, in characters.
pub const UID_MAX_CHARS: usize = 1_000;

const ENTITY: &str = "calendar source";

/// The aggregate id of `user_id`'s `source`.
///
/// ```
/// let id = aggregates::calendar_source::source_id(uuid::Uuid::nil(), "ics:work");
/// assert_eq!(id, "00000000-0000-0000-0000-000000000000:ics:work");
/// ```
pub fn source_id(user_id: Uuid, source: &str) -> String {
    format!("{user_id}:{source}")
}

/// Checks a source name: 1 to [`SOURCE_MAX_CHARS`] of `a-z 0-9 : _ . -` (e.g. `ics:work`,
/// `google:primary`); an error names `source`.
pub fn validate_source(source: &str) -> Result<(), DomainError> {
    let len = source.chars().count();
    if len == 0 || len > SOURCE_MAX_CHARS {
        return Err(DomainError::invalid(
            "source",
            format!("must be 1 to {SOURCE_MAX_CHARS} characters, got {len}"),
        ));
    }
    if !source
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":_.-".contains(c))
    {
        return Err(DomainError::invalid(
            "source",
            format!("may hold only a-z, 0-9, ':', '_', '.', '-', got {source:?}"),
        ));
    }
    Ok(())
}

/// One external event as the source holds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// The external id (ICS UID).
    pub uid: String,
    /// The content hash of its details.
    pub hash: String,
}

/// What is known about one external event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The calendar event it is.
    pub event_id: Uuid,
    /// Its content hash at the last sync.
    pub hash: String,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// The external id.
    pub uid: String,
    /// The calendar event.
    pub event_id: Uuid,
    /// The new content hash (empty for a removal).
    pub hash: String,
}

/// What a user (through the API) can ask of a source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceCommand {
    /// Compare the source's events with the last sync and record the changes.
    PlanSync {
        /// The source name (checked with [`validate_source`]).
        source: String,
        /// The events (all of them when `full`, the changed ones otherwise).
        entries: Vec<SyncEntry>,
        /// UIDs the source reports deleted (incremental syncs).
        deleted: Vec<String>,
        /// A full listing: known UIDs missing from `entries` are removed.
        full: bool,
        /// Event ids for UIDs seen for the first time (the API draws one per entry).
        new_ids: BTreeMap<String, Uuid>,
        /// The source's token for the next incremental sync (None for ICS).
        sync_token: Option<String>,
    },
    /// The planned changes have been applied to the events.
    CompleteSync,
}

/// What happened to a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceEvent {
    /// A sync was planned.
    SyncPlanned {
        /// The owner.
        user_id: Uuid,
        /// The source name.
        source: String,
        /// New external events and the event ids they get.
        created: Vec<Planned>,
        /// Changed (or, after an unfinished sync, re-applied) external events.
        updated: Vec<Planned>,
        /// External events gone from the source: their events are cancelled.
        removed: Vec<Planned>,
        /// Entries that did not change.
        unchanged: u32,
        /// A full sync.
        full: bool,
        /// The token for the next incremental sync.
        sync_token: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The plan was applied.
    SyncCompleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for SourceEvent {
    fn event_type(&self) -> String {
        match self {
            SourceEvent::SyncPlanned { .. } => "SyncPlanned",
            SourceEvent::SyncCompleted { .. } => "SyncCompleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The aggregate: one user's connection to one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalendarSource {
    owner: Option<Uuid>,
    source: Option<String>,
    entries: BTreeMap<String, Known>,
    pending: bool,
    sync_token: Option<String>,
}

impl CalendarSource {
    /// What the last sync brought in, by external id.
    pub fn entries(&self) -> &BTreeMap<String, Known> {
        &self.entries
    }

    /// Whether a planned sync was not completed.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// The token for the next incremental sync.
    pub fn sync_token(&self) -> Option<&str> {
        self.sync_token.as_deref()
    }

    fn decide(&self, command: Issued<SourceCommand>) -> Result<Vec<SourceEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        if self.owner.is_some_and(|o| o != actor) {
            return Err(DomainError::NotFound {
                entity: ENTITY,
                id: String::new(),
            });
        }
        match command {
            SourceCommand::CompleteSync => Ok(if self.pending {
                vec![SourceEvent::SyncCompleted { at }]
            } else {
                vec![]
            }),
            SourceCommand::PlanSync {
                source,
                entries,
                deleted,
                full,
                new_ids,
                sync_token,
            } => {
                validate_source(&source)?;
                if self.source.as_ref().is_some_and(|s| *s != source) {
                    return Err(DomainError::invalid(
                        "source",
                        "does not match this connection",
                    ));
                }
                let mut seen = BTreeSet::new();
                let (mut created, mut updated, mut unchanged) = (Vec::new(), Vec::new(), 0u32);
                for e in entries {
                    let len = e.uid.chars().count();
                    if len == 0 || len > UID_MAX_CHARS {
                        return Err(DomainError::invalid(
                            "external_id",
                            format!("must be 1 to {UID_MAX_CHARS} characters"),
                        ));
                    }
                    if !seen.insert(e.uid.clone()) {
                        return Err(DomainError::invalid(
                            "external_id",
                            format!("{:?} is listed twice", e.uid),
                        ));
                    }
                    match self.entries.get(&e.uid) {
                        Some(k) if k.hash == e.hash && !self.pending => unchanged += 1,
                        Some(k) => updated.push(Planned {
                            uid: e.uid,
                            event_id: k.event_id,
                            hash: e.hash,
                        }),
                        None => {
                            let event_id = *new_ids.get(&e.uid).ok_or_else(|| {
                                DomainError::invalid(
                                    "new_ids",
                                    format!("no event id for the new {:?}", e.uid),
                                )
                            })?;
                            created.push(Planned {
                                uid: e.uid,
                                event_id,
                                hash: e.hash,
                            });
                        }
                    }
                }
                let gone: Vec<&String> = if full {
                    self.entries.keys().filter(|u| !seen.contains(*u)).collect()
                } else {
                    deleted
                        .iter()
                        .filter(|u| self.entries.contains_key(*u) && !seen.contains(*u))
                        .collect()
                };
                let removed: Vec<Planned> = gone
                    .into_iter()
                    .map(|uid| Planned {
                        uid: uid.clone(),
                        event_id: self.entries[uid].event_id,
                        hash: String::new(),
                    })
                    .collect();
                let nothing = created.is_empty() && updated.is_empty() && removed.is_empty();
                if nothing && sync_token == self.sync_token && self.owner.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![SourceEvent::SyncPlanned {
                    user_id: actor,
                    source,
                    created,
                    updated,
                    removed,
                    unchanged,
                    full,
                    sync_token,
                    at,
                }])
            }
        }
    }
}

crate::pillar_aggregate!(
    CalendarSource,
    "calendar_source",
    SourceCommand,
    SourceEvent
);

impl CalendarSource {
    /// Folds `event` into the state.
    fn evolve(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::SyncPlanned {
                user_id,
                source,
                created,
                updated,
                removed,
                sync_token,
                ..
            } => {
                self.owner.get_or_insert(user_id);
                self.source.get_or_insert(source);
                for p in created.into_iter().chain(updated) {
                    self.entries.insert(
                        p.uid,
                        Known {
                            event_id: p.event_id,
                            hash: p.hash,
                        },
                    );
                }
                for p in removed {
                    self.entries.remove(&p.uid);
                }
                self.sync_token = sync_token;
                self.pending = true;
            }
            SourceEvent::SyncCompleted { .. } => self.pending = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const E1: Uuid = Uuid::from_u128(0xe1);
    const E2: Uuid = Uuid::from_u128(0xe2);

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn entry(uid: &str, hash: &str) -> SyncEntry {
        SyncEntry {
            uid: uid.into(),
            hash: hash.into(),
        }
    }

    fn plan(entries: Vec<SyncEntry>) -> SourceCommand {
        SourceCommand::PlanSync {
            source: "ics:work".into(),
            entries,
            deleted: vec![],
            full: true,
            new_ids: BTreeMap::from([("a".to_string(), E1), ("b".to_string(), E2)]),
            sync_token: None,
        }
    }

    fn planned(uid: &str, id: Uuid, hash: &str) -> Planned {
        Planned {
            uid: uid.into(),
            event_id: id,
            hash: hash.into(),
        }
    }

    fn synced(
        created: Vec<Planned>,
        updated: Vec<Planned>,
        removed: Vec<Planned>,
        unchanged: u32,
    ) -> SourceEvent {
        SourceEvent::SyncPlanned {
            user_id: ALICE,
            source: "ics:work".into(),
            created,
            updated,
            removed,
            unchanged,
            full: true,
            sync_token: None,
            at: at(),
        }
    }

    fn run(
        given: Vec<SourceEvent>,
        actor: Uuid,
        command: SourceCommand,
    ) -> Result<Vec<SourceEvent>, DomainError> {
        TestFramework::<CalendarSource>::with(())
            .given(given)
            .when(Issued::new(actor, at(), command))
            .inspect_result()
    }

    fn first_import() -> Vec<SourceEvent> {
        vec![
            synced(
                vec![planned("a", E1, "h1"), planned("b", E2, "h2")],
                vec![],
                vec![],
                0,
            ),
            SourceEvent::SyncCompleted { at: at() },
        ]
    }

    #[test]
    fn a_first_import_creates_every_entry() {
        let events = run(
            vec![],
            ALICE,
            plan(vec![entry("a", "h1"), entry("b", "h2")]),
        )
        .unwrap();
        assert_eq!(events, vec![first_import()[0].clone()]);
    }

    #[test]
    fn the_same_file_again_changes_nothing() {
        let events = run(
            first_import(),
            ALICE,
            plan(vec![entry("a", "h1"), entry("b", "h2")]),
        )
        .unwrap();
        assert_eq!(events, vec![]);
        let done = run(first_import(), ALICE, SourceCommand::CompleteSync).unwrap();
        assert_eq!(done, vec![], "nothing pending");
    }

    #[test]
    fn changes_and_removals_are_planned() {
        let events = run(first_import(), ALICE, plan(vec![entry("a", "h1-new")])).unwrap();
        assert_eq!(
            events,
            vec![synced(
                vec![],
                vec![planned("a", E1, "h1-new")],
                vec![planned("b", E2, "")],
                0
            )]
        );
    }

    #[test]
    fn an_unfinished_sync_is_reapplied() {
        let given = vec![first_import()[0].clone()];
        let events = run(
            given.clone(),
            ALICE,
            plan(vec![entry("a", "h1"), entry("b", "h2")]),
        )
        .unwrap();
        assert_eq!(
            events,
            vec![synced(
                vec![],
                vec![planned("a", E1, "h1"), planned("b", E2, "h2")],
                vec![],
                0
            )]
        );
        let done = run(given, ALICE, SourceCommand::CompleteSync).unwrap();
        assert_eq!(done, vec![SourceEvent::SyncCompleted { at: at() }]);
    }

    #[test]
    fn incremental_syncs_remove_only_what_is_reported_deleted() {
        let delta = SourceCommand::PlanSync {
            source: "ics:work".into(),
            entries: vec![],
            deleted: vec!["b".into(), "never-seen".into()],
            full: false,
            new_ids: BTreeMap::new(),
            sync_token: Some("t2".into()),
        };
        let events = run(first_import(), ALICE, delta).unwrap();
        let SourceEvent::SyncPlanned {
            removed,
            sync_token,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        assert_eq!(removed, &vec![planned("b", E2, "")]);
        assert_eq!(sync_token.as_deref(), Some("t2"));
        let mut source = CalendarSource::default();
        for e in first_import().into_iter().chain(events) {
            source.apply(e);
        }
        assert_eq!(source.sync_token(), Some("t2"));
        assert!(source.is_pending());
        assert_eq!(source.entries().keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn bad_input_and_other_users_are_refused() {
        let err = run(first_import(), BOB, plan(vec![])).unwrap_err();
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let dup = run(vec![], ALICE, plan(vec![entry("a", "1"), entry("a", "2")])).unwrap_err();
        assert!(
            matches!(
                dup,
                DomainError::Invalid {
                    field: "external_id",
                    ..
                }
            ),
            "{dup:?}"
        );
        let no_id = run(vec![], ALICE, plan(vec![entry("zzz", "1")])).unwrap_err();
        assert!(
            matches!(
                no_id,
                DomainError::Invalid {
                    field: "new_ids",
                    ..
                }
            ),
            "{no_id:?}"
        );
        for bad in ["", "ICS:Work", "a b"] {
            assert!(validate_source(bad).is_err(), "{bad:?}");
        }
        assert!(validate_source("google:primary").is_ok());
    }
}

//! Tasks: most days a new task; most days one completed; sometimes one re-prioritised; the
//! oldest open task deleted when too many pile up.

use std::collections::VecDeque;

use aggregates::Issued;
use aggregates::task::{NewTask, Task, TaskChanges, TaskCommand};
use chrono::{DateTime, Duration as Span, Utc};
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who keep a task list.
const SHARE: f64 = 0.6;

/// The task lists of the users who keep one: their open tasks, oldest first.
pub(super) struct Tasks {
    open: Adopters<VecDeque<Stream<Task>>>,
}

impl Tasks {
    /// Open tasks kept per user (the oldest is deleted beyond it).
    const MAX_OPEN: usize = 40;

    /// Nobody's tasks yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Tasks {
            open: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Tasks {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(open) = self.open.of(index, rng, |_| Ok(VecDeque::new()))? else {
            return Ok(());
        };
        let at = day + Span::minutes(8 * 60 + rng.below(600) as i64);
        if rng.chance(0.9) {
            let task_id = rng.uuid();
            let mut task = Stream::<Task>::new(task_id);
            let new = NewTask {
                task_id,
                title: format!("task {}", rng.below(10_000)),
                due: Some(at + Span::hours(rng.below(96) as i64)),
                priority: rng.below(5) as u32,
                tags: if rng.chance(0.3) {
                    vec!["home".into()]
                } else {
                    Vec::new()
                },
                ..NewTask::default()
            };
            task.exec(
                Issued::new(user, at, TaskCommand::Create(new)),
                user,
                at,
                rng,
                out,
            )?;
            open.push_back(task);
        }
        let later = at + Span::minutes(30);
        if rng.chance(0.7)
            && let Some(mut task) = open.pop_front()
        {
            task.exec(
                Issued::new(user, later, TaskCommand::Complete),
                user,
                later,
                rng,
                out,
            )?;
        }
        if rng.chance(0.1)
            && let Some(task) = open.back_mut()
        {
            let changes = TaskChanges {
                priority: Some(rng.below(5) as u32),
                ..TaskChanges::default()
            };
            task.exec(
                Issued::new(user, later, TaskCommand::Update(changes)),
                user,
                later,
                rng,
                out,
            )?;
        }
        if open.len() > Self::MAX_OPEN
            && let Some(mut task) = open.pop_front()
        {
            task.exec(
                Issued::new(user, later, TaskCommand::Delete),
                user,
                later,
                rng,
                out,
            )?;
        }
        Ok(())
    }
}

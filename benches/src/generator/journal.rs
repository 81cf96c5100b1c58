//! Journal: an entry on most evenings, a few sentences from small word lists (so the VADER
//! sentiment ranges from glad to gloomy), sometimes with a mood and tags; now and then the
//! previous entry is edited or deleted. One `journal_entry` stream per entry.

use aggregates::Issued;
use aggregates::journal::{EntryContent, JournalCommand, JournalEntry};
use chrono::{DateTime, Duration as Span, Utc};
use uuid::Uuid;

use super::{Activity, Adopters, GenEvent, Rng, Stream};

/// The share of users who keep a journal.
const SHARE: f64 = 0.3;
/// The chance of an entry on a given day.
const WRITES: f64 = 0.75;

const OPENINGS: [&str; 10] = [
    "Today",
    "This morning",
    "Work",
    "The meeting",
    "Dinner with friends",
    "My run",
    "The commute",
    "The afternoon",
    "Lunch",
    "The weekend plan",
];
const FEELINGS: [&str; 16] = [
    "was great",
    "was wonderful",
    "felt calm",
    "was okay",
    "was fine",
    "was boring",
    "was stressful",
    "was terrible",
    "felt awful",
    "was productive",
    "was frustrating",
    "made me happy",
    "left me sad",
    "was exhausting",
    "was fun",
    "went as usual",
];
const CLOSINGS: [&str; 8] = [
    "I am grateful for my family.",
    "I worry about the deadline.",
    "Tomorrow will be better.",
    "I need more sleep.",
    "I love this season.",
    "Nothing special happened.",
    "I hate waiting.",
    "Proud of the progress.",
];
const TAGS: [&str; 6] = ["work", "family", "health", "gratitude", "travel", "friends"];

/// A few sentences, a mood on most entries, up to two tags.
fn content(rng: &mut Rng) -> EntryContent {
    let mut text = String::new();
    for _ in 0..1 + rng.below(2) {
        let (opening, feeling) = (rng.pick(&OPENINGS), rng.pick(&FEELINGS));
        text.push_str(&format!("{opening} {feeling}. "));
    }
    if rng.chance(0.6) {
        let closing = rng.pick(&CLOSINGS);
        text.push_str(closing);
    }
    EntryContent {
        text,
        mood: rng.chance(0.6).then(|| 2 + rng.below(7) as u8),
        tags: (0..rng.below(3))
            .map(|_| rng.pick(&TAGS).to_string())
            .collect(),
    }
}

/// The last entry of each user who keeps a journal (the one they may edit or delete).
pub(super) struct Journal {
    last: Adopters<Option<(Uuid, Stream<JournalEntry>)>>,
}

impl Journal {
    /// No entry yet, for `users` users.
    pub(super) fn new(users: usize) -> Self {
        Journal {
            last: Adopters::new(users, SHARE),
        }
    }
}

impl Activity for Journal {
    fn day(
        &mut self,
        index: usize,
        user: Uuid,
        day: DateTime<Utc>,
        rng: &mut Rng,
        out: &mut Vec<GenEvent>,
    ) -> anyhow::Result<()> {
        let Some(last) = self.last.of(index, rng, |_| Ok(None))? else {
            return Ok(());
        };
        let at = day + Span::minutes(21 * 60 + rng.below(150) as i64);
        match (rng.below(100), last.take()) {
            (0..=4, Some((entry_id, mut entry))) => {
                let edit = JournalCommand::EditEntry {
                    entry_id,
                    content: content(rng),
                };
                entry.exec(Issued::new(user, at, edit), user, at, rng, out)?;
                *last = Some((entry_id, entry));
            }
            (5, Some((entry_id, mut entry))) => {
                let delete = JournalCommand::DeleteEntry { entry_id };
                entry.exec(Issued::new(user, at, delete), user, at, rng, out)?;
            }
            (_, kept) => *last = kept,
        }
        if rng.chance(WRITES) {
            let entry_id = rng.uuid();
            let mut entry = Stream::new(entry_id);
            let write = JournalCommand::WriteEntry {
                entry_id,
                content: content(rng),
                written_at: None,
            };
            entry.exec(Issued::new(user, at, write), user, at, rng, out)?;
            *last = Some((entry_id, entry));
        }
        Ok(())
    }
}

//! The Journal pillar aggregate: one [`JournalEntry`] per entry (aggregate type
//! `journal_entry`, pillar `journal`; aggregate id = the entry id, a UUID v7 chosen by the client
//! or assigned by the server).
//!
//! An entry has a text, an optional mood (1–9), tags (lowercase, deduplicated) and the instant it
//! was written (`written_at`: given by the client, or the command's time), which decides the
//! local day the entry belongs to in the read models. Entries are written, edited (text, mood and
//! tags replaced as a whole) and deleted; a deleted entry is gone: editing or deleting it again
//! is NOT_FOUND, like an unknown entry or another user's.
//!
//! **Sentiment.** Every text gets a VADER sentiment ([`Sentiment::of`], the `vader_sentiment`
//! crate, whose lexicon is compiled into the binary: nothing is downloaded). VADER is a pure,
//! deterministic function of the text, so it is computed here, in `decide`: the event that
//! stores a text always carries the score of exactly that text, whoever issues the command, and
//! the rule is tested with the aggregate. `vader_sentiment` 0.1.1 (dependencies: regex,
//! lazy_static, maplit, unicase) matches the reference implementation (vaderSentiment 3.3.2)
//! on the compound of the sentences in the tests; known differences: a booster word two words
//! back also boosts (`"is very smart, handsome"`: 0.7760 here, 0.7559 in Python) and the
//! positive/neutral/negative proportions can differ by a few hundredths. The score is stored in the event as integers
//! (compound in ten-thousandths, the proportions in thousandths: VADER's own reported
//! precision), so an event never carries float noise and a rollup sums exactly; a later change
//! of the lexicon does not re-score past entries.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};

/// The most characters (not bytes) an entry's text may have, after trimming.
pub const TEXT_MAX_CHARS: usize = 100_000;
/// The lowest mood.
pub const MOOD_MIN: u8 = 1;
/// The highest mood.
pub const MOOD_MAX: u8 = 9;
/// The most tags an entry may have (after deduplication).
pub const MAX_TAGS: usize = 20;
/// The most characters a tag may have, after trimming.
pub const TAG_MAX_CHARS: usize = 40;
/// How far in the future (by the server's clock) an entry's `written_at` may be: clock skew.
pub const FUTURE_TOLERANCE_SECONDS: i64 = 300;

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "journal entry";

/// A VADER sentiment score, stored as integers: `compound` in ten-thousandths
/// (−10000 = −1.0 … 10000 = 1.0), the proportions of positive, neutral and negative text in
/// thousandths (0–1000, summing to about 1000; all 0 for a text without words).
///
/// ```
/// use aggregates::journal::Sentiment;
/// let s = Sentiment::of("The book was good.");
/// assert_eq!(s.compound, 4404); // 0.4404, as the reference implementation says
/// assert!(Sentiment::of("A really bad, horrible book.").compound < 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentiment {
    /// The normalised overall score, in ten-thousandths (−10000 to 10000).
    pub compound: i32,
    /// Share of positive text, in thousandths.
    pub positive: u16,
    /// Share of neutral text, in thousandths.
    pub neutral: u16,
    /// Share of negative text, in thousandths.
    pub negative: u16,
}

impl Sentiment {
    /// VADER's scores of `text`, rounded to its reported precision (4 decimals for the
    /// compound, 3 for the proportions).
    pub fn of(text: &str) -> Self {
        let scores = analyzer().polarity_scores(text);
        let get = |key: &str| {
            scores
                .get(key)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
        };
        let thousandths = |key: &str| (get(key).clamp(0.0, 1.0) * 1_000.0).round() as u16;
        Self {
            compound: (get("compound").clamp(-1.0, 1.0) * 10_000.0).round() as i32,
            positive: thousandths("pos"),
            neutral: thousandths("neu"),
            negative: thousandths("neg"),
        }
    }

    /// The compound score as a number in [−1, 1] (for display; sums use the integer).
    pub fn compound_score(&self) -> f64 {
        f64::from(self.compound) / 10_000.0
    }
}

/// The one analyzer (its lexicon is parsed once, on first use).
fn analyzer() -> &'static vader_sentiment::SentimentIntensityAnalyzer<'static> {
    static ANALYZER: std::sync::OnceLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> =
        std::sync::OnceLock::new();
    ANALYZER.get_or_init(vader_sentiment::SentimentIntensityAnalyzer::new)
}

/// What an entry says: what WriteEntry sets and EditEntry replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent {
    /// The text (trimmed by validation; not empty, at most [`TEXT_MAX_CHARS`]).
    pub text: String,
    /// The mood, [`MOOD_MIN`] to [`MOOD_MAX`], if given.
    pub mood: Option<u8>,
    /// Tags as given (validation trims, lowercases and deduplicates them).
    pub tags: Vec<String>,
}

impl EntryContent {
    /// The content checked and normalised: trimmed text, tags trimmed, lowercased,
    /// deduplicated and sorted. INVALID_ARGUMENT names `text`, `mood` or `tags`.
    pub fn validated(self) -> Result<Self, DomainError> {
        let text = self.text.trim().to_string();
        if text.is_empty() {
            return Err(DomainError::invalid("text", "must not be empty"));
        }
        if text.contains('\0') {
            return Err(DomainError::invalid(
                "text",
                "must not contain NUL characters",
            ));
        }
        let len = text.chars().count();
        if len > TEXT_MAX_CHARS {
            return Err(DomainError::invalid(
                "text",
                format!("must be at most {TEXT_MAX_CHARS} characters, got {len}"),
            ));
        }
        if let Some(mood) = self.mood
            && !(MOOD_MIN..=MOOD_MAX).contains(&mood)
        {
            return Err(DomainError::invalid(
                "mood",
                format!("must be {MOOD_MIN} to {MOOD_MAX}, got {mood}"),
            ));
        }
        let mut tags = BTreeSet::new();
        for tag in &self.tags {
            let tag = tag.trim().to_lowercase();
            if tag.contains('\0') {
                return Err(DomainError::invalid(
                    "tags",
                    "must not contain NUL characters",
                ));
            }
            let len = tag.chars().count();
            if len == 0 || len > TAG_MAX_CHARS {
                return Err(DomainError::invalid(
                    "tags",
                    format!("each tag must be 1 to {TAG_MAX_CHARS} characters, got {len}"),
                ));
            }
            tags.insert(tag);
        }
        if tags.len() > MAX_TAGS {
            return Err(DomainError::invalid(
                "tags",
                format!("at most {MAX_TAGS} tags, got {}", tags.len()),
            ));
        }
        Ok(Self {
            text,
            mood: self.mood,
            tags: tags.into_iter().collect(),
        })
    }
}

/// What a user can do with a journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalCommand {
    /// Write a new entry; ALREADY_EXISTS when the id was used (even by a deleted entry).
    WriteEntry {
        /// The new entry's id (not nil).
        entry_id: Uuid,
        /// What it says.
        content: EntryContent,
        /// When it was written (the command's time when `None`); at most
        /// [`FUTURE_TOLERANCE_SECONDS`] ahead of the command's time.
        written_at: Option<DateTime<Utc>>,
    },
    /// Replace the entry's text, mood and tags; nothing is recorded when they are unchanged.
    EditEntry {
        /// The entry.
        entry_id: Uuid,
        /// The new content.
        content: EntryContent,
    },
    /// Delete the entry.
    DeleteEntry {
        /// The entry.
        entry_id: Uuid,
    },
}

impl JournalCommand {
    /// The entry the command is about.
    pub fn entry_id(&self) -> Uuid {
        match self {
            JournalCommand::WriteEntry { entry_id, .. }
            | JournalCommand::EditEntry { entry_id, .. }
            | JournalCommand::DeleteEntry { entry_id } => *entry_id,
        }
    }
}

/// What happened to a journal entry. Every event names its owner and the entry's `written_at`,
/// so a daily rollup needs no other event of the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalEntryEvent {
    /// The entry was written.
    JournalEntryWritten {
        /// Its id (also the aggregate id).
        entry_id: Uuid,
        /// Its owner.
        user_id: Uuid,
        /// The text (trimmed).
        text: String,
        /// The mood.
        mood: Option<u8>,
        /// The tags (normalised).
        tags: Vec<String>,
        /// The sentiment of `text`.
        sentiment: Sentiment,
        /// When it was written (decides its local day).
        written_at: DateTime<Utc>,
    },
    /// The entry's text, mood and tags were replaced.
    JournalEntryEdited {
        /// The entry.
        entry_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// The new text.
        text: String,
        /// The new mood.
        mood: Option<u8>,
        /// The new tags.
        tags: Vec<String>,
        /// The sentiment of the new text.
        sentiment: Sentiment,
        /// When the entry was written (unchanged by the edit).
        written_at: DateTime<Utc>,
        /// When it was edited.
        edited_at: DateTime<Utc>,
    },
    /// The entry was deleted.
    JournalEntryDeleted {
        /// The entry.
        entry_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// When the entry was written.
        written_at: DateTime<Utc>,
        /// When it was deleted.
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for JournalEntryEvent {
    /// The variant name, e.g. `JournalEntryWritten` (on the bus: `journal.written`).
    fn event_type(&self) -> String {
        match self {
            JournalEntryEvent::JournalEntryWritten { .. } => "JournalEntryWritten",
            JournalEntryEvent::JournalEntryEdited { .. } => "JournalEntryEdited",
            JournalEntryEvent::JournalEntryDeleted { .. } => "JournalEntryDeleted",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl JournalEntryEvent {
    /// The entry the event is about.
    pub fn entry_id(&self) -> Uuid {
        match self {
            JournalEntryEvent::JournalEntryWritten { entry_id, .. }
            | JournalEntryEvent::JournalEntryEdited { entry_id, .. }
            | JournalEntryEvent::JournalEntryDeleted { entry_id, .. } => *entry_id,
        }
    }
}

/// The aggregate: one journal entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    owner: Option<Uuid>,
    text: String,
    mood: Option<u8>,
    tags: Vec<String>,
    sentiment: Sentiment,
    written_at: Option<DateTime<Utc>>,
    deleted: bool,
}

impl JournalEntry {
    /// The owner, once written.
    pub fn owner(&self) -> Option<Uuid> {
        self.owner
    }

    /// The current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The current sentiment.
    pub fn sentiment(&self) -> Sentiment {
        self.sentiment
    }

    /// Whether it was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The pure decision: the events `command` produces against the current state.
    fn decide(
        &self,
        command: Issued<JournalCommand>,
    ) -> Result<Vec<JournalEntryEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        let entry_id = command.entry_id();
        if entry_id.is_nil() {
            return Err(DomainError::invalid("entry_id", "must not be the nil UUID"));
        }
        match command {
            JournalCommand::WriteEntry {
                content,
                written_at,
                ..
            } => {
                let content = content.validated()?;
                let written_at = written_at.unwrap_or(at);
                if written_at > at + Duration::seconds(FUTURE_TOLERANCE_SECONDS) {
                    return Err(DomainError::invalid(
                        "written_at",
                        format!("must not be in the future (it is {written_at}, now is {at})"),
                    ));
                }
                if self.owner.is_some() {
                    return Err(DomainError::AlreadyExists {
                        entity: ENTITY,
                        id: entry_id.to_string(),
                    });
                }
                Ok(vec![JournalEntryEvent::JournalEntryWritten {
                    entry_id,
                    user_id: actor,
                    sentiment: Sentiment::of(&content.text),
                    text: content.text,
                    mood: content.mood,
                    tags: content.tags,
                    written_at,
                }])
            }
            JournalCommand::EditEntry { content, .. } => {
                let content = content.validated()?;
                let written_at = self.live(actor, entry_id)?;
                if content.text == self.text
                    && content.mood == self.mood
                    && content.tags == self.tags
                {
                    return Ok(vec![]);
                }
                Ok(vec![JournalEntryEvent::JournalEntryEdited {
                    entry_id,
                    user_id: actor,
                    sentiment: Sentiment::of(&content.text),
                    text: content.text,
                    mood: content.mood,
                    tags: content.tags,
                    written_at,
                    edited_at: at,
                }])
            }
            JournalCommand::DeleteEntry { .. } => {
                let written_at = self.live(actor, entry_id)?;
                Ok(vec![JournalEntryEvent::JournalEntryDeleted {
                    entry_id,
                    user_id: actor,
                    written_at,
                    deleted_at: at,
                }])
            }
        }
    }

    /// The entry's `written_at` when `actor` owns it and it is not deleted; NOT_FOUND otherwise
    /// (unknown, someone else's, or deleted: all look the same).
    fn live(&self, actor: Uuid, entry_id: Uuid) -> Result<DateTime<Utc>, DomainError> {
        match self.written_at {
            Some(at) if self.owner == Some(actor) && !self.deleted => Ok(at),
            _ => Err(DomainError::NotFound {
                entity: ENTITY,
                id: entry_id.to_string(),
            }),
        }
    }

    /// Folds `event` into the state.
    fn evolve(&mut self, event: JournalEntryEvent) {
        match event {
            JournalEntryEvent::JournalEntryWritten {
                user_id,
                text,
                mood,
                tags,
                sentiment,
                written_at,
                ..
            } => {
                self.owner = Some(user_id);
                self.written_at = Some(written_at);
                (self.text, self.mood, self.tags, self.sentiment) = (text, mood, tags, sentiment);
            }
            JournalEntryEvent::JournalEntryEdited {
                text,
                mood,
                tags,
                sentiment,
                ..
            } => {
                (self.text, self.mood, self.tags, self.sentiment) = (text, mood, tags, sentiment);
            }
            JournalEntryEvent::JournalEntryDeleted { .. } => self.deleted = true,
        }
    }
}

crate::pillar_aggregate!(
    JournalEntry,
    "journal_entry",
    JournalCommand,
    JournalEntryEvent
);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    type Fw = TestFramework<JournalEntry>;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const E1: Uuid = Uuid::from_u128(0xe1);

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    fn content(text: &str, mood: Option<u8>, tags: &[&str]) -> EntryContent {
        EntryContent {
            text: text.to_string(),
            mood,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn write(content: EntryContent) -> JournalCommand {
        JournalCommand::WriteEntry {
            entry_id: E1,
            content,
            written_at: None,
        }
    }

    fn written(text: &str) -> JournalEntryEvent {
        JournalEntryEvent::JournalEntryWritten {
            entry_id: E1,
            user_id: ALICE,
            text: text.to_string(),
            mood: Some(5),
            tags: vec!["home".to_string()],
            sentiment: Sentiment::of(text),
            written_at: now(),
        }
    }

    fn deleted() -> JournalEntryEvent {
        JournalEntryEvent::JournalEntryDeleted {
            entry_id: E1,
            user_id: ALICE,
            written_at: now(),
            deleted_at: now(),
        }
    }

    fn decide(
        given: Vec<JournalEntryEvent>,
        actor: Uuid,
        command: JournalCommand,
    ) -> Result<Vec<JournalEntryEvent>, DomainError> {
        Fw::with(())
            .given(given)
            .when(Issued::new(actor, now(), command))
            .inspect_result()
    }

    fn assert_invalid(result: Result<Vec<JournalEntryEvent>, DomainError>, field: &str) {
        match result {
            Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
    }

    #[test]
    fn vader_reference_scores() {
        // the reference implementation's outputs (vaderSentiment 3.3.2, run on these sentences)
        for (text, compound) in [
            ("VADER is smart, handsome, and funny.", 8316),
            ("VADER is smart, handsome, and funny!", 8439),
            ("The book was good.", 4404),
            ("A really bad, horrible book.", -8211),
            ("At least it isn't a horrible book.", 4310),
            ("Today sux", -3612),
            ("Not bad at all", 4310),
            (
                "The plot was good, but the characters are uncompelling and the dialog is not great.",
                -7042,
            ),
            ("A terrible, awful, miserable day. I hate it.", -9186),
        ] {
            assert_eq!(Sentiment::of(text).compound, compound, "{text}");
        }
        let s = Sentiment::of("VADER is smart, handsome, and funny.");
        assert_eq!((s.negative, s.neutral, s.positive), (0, 254, 746));
        assert_eq!(Sentiment::of("   "), Sentiment::default(), "no words");
        assert!((Sentiment::of("The book was good.").compound_score() - 0.4404).abs() < 1e-9);
    }

    #[test]
    fn write_records_normalised_content_and_its_sentiment() {
        fw_write_then(
            content(
                "  A wonderful, happy day with friends!  ",
                Some(8),
                &["Friends", " family ", "friends"],
            ),
            |e| {
                let JournalEntryEvent::JournalEntryWritten {
                    text,
                    tags,
                    mood,
                    sentiment,
                    written_at,
                    user_id,
                    ..
                } = e
                else {
                    panic!("{e:?}")
                };
                assert_eq!(text, "A wonderful, happy day with friends!");
                assert_eq!(tags, &["family", "friends"], "trimmed, lowercase, deduped");
                assert_eq!(*mood, Some(8));
                assert_eq!(*user_id, ALICE);
                assert_eq!(*written_at, now(), "defaults to the command's time");
                assert!(sentiment.compound > 5000, "clearly positive: {sentiment:?}");
                assert_eq!(
                    *sentiment,
                    Sentiment::of(text),
                    "the score of the stored text"
                );
            },
        );
        fw_write_then(
            content("A terrible, awful, miserable day. I hate it.", None, &[]),
            |e| match e {
                JournalEntryEvent::JournalEntryWritten { sentiment, .. } => {
                    assert!(
                        sentiment.compound < -5000,
                        "clearly negative: {sentiment:?}"
                    )
                }
                other => panic!("{other:?}"),
            },
        );
    }

    fn fw_write_then(content: EntryContent, check: impl Fn(&JournalEntryEvent)) {
        let events = decide(vec![], ALICE, write(content)).expect("accepted");
        assert_eq!(events.len(), 1);
        check(&events[0]);
    }

    #[test]
    fn content_is_validated_naming_the_field() {
        assert_invalid(
            decide(vec![], ALICE, write(content(" \n ", None, &[]))),
            "text",
        );
        assert_invalid(
            decide(vec![], ALICE, write(content("a\0b", None, &[]))),
            "text",
        );
        assert_invalid(
            decide(vec![], ALICE, write(content("ok", None, &["a\0"]))),
            "tags",
        );
        let long = "x".repeat(TEXT_MAX_CHARS + 1);
        assert_invalid(
            decide(vec![], ALICE, write(content(&long, None, &[]))),
            "text",
        );
        let at_limit = "é".repeat(TEXT_MAX_CHARS);
        assert!(decide(vec![], ALICE, write(content(&at_limit, None, &[]))).is_ok());
        for bad in [0, 10, 255] {
            assert_invalid(
                decide(vec![], ALICE, write(content("ok", Some(bad), &[]))),
                "mood",
            );
        }
        for good in [1, 9] {
            assert!(decide(vec![], ALICE, write(content("ok", Some(good), &[]))).is_ok());
        }
        assert_invalid(
            decide(vec![], ALICE, write(content("ok", None, &["  "]))),
            "tags",
        );
        let long_tag = "t".repeat(TAG_MAX_CHARS + 1);
        assert_invalid(
            decide(vec![], ALICE, write(content("ok", None, &[&long_tag]))),
            "tags",
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_invalid(
            decide(vec![], ALICE, write(content("ok", None, &many))),
            "tags",
        );
        // duplicates count once
        let dupes = vec!["Same"; MAX_TAGS + 5];
        assert!(decide(vec![], ALICE, write(content("ok", None, &dupes))).is_ok());
        let nil = JournalCommand::DeleteEntry {
            entry_id: Uuid::nil(),
        };
        assert_invalid(decide(vec![], ALICE, nil), "entry_id");
    }

    #[test]
    fn written_at_may_be_past_but_not_future() {
        let past = now() - Duration::days(400);
        let cmd = |at| JournalCommand::WriteEntry {
            entry_id: E1,
            content: content("ok", None, &[]),
            written_at: Some(at),
        };
        let events = decide(vec![], ALICE, cmd(past)).unwrap();
        assert!(matches!(
            &events[0],
            JournalEntryEvent::JournalEntryWritten { written_at, .. } if *written_at == past
        ));
        let skew = now() + Duration::seconds(FUTURE_TOLERANCE_SECONDS);
        assert!(
            decide(vec![], ALICE, cmd(skew)).is_ok(),
            "clock skew tolerated"
        );
        assert_invalid(
            decide(vec![], ALICE, cmd(skew + Duration::seconds(1))),
            "written_at",
        );
    }

    #[test]
    fn an_id_is_written_once() {
        for given in [vec![written("first")], vec![written("first"), deleted()]] {
            let err = decide(given, ALICE, write(content("again", None, &[]))).unwrap_err();
            assert!(matches!(err, DomainError::AlreadyExists { .. }), "{err:?}");
        }
    }

    #[test]
    fn edit_replaces_content_with_a_new_sentiment() {
        Fw::with(())
            .given(vec![written("The book was good.")])
            .when(Issued::new(
                ALICE,
                now() + Duration::hours(1),
                JournalCommand::EditEntry {
                    entry_id: E1,
                    content: content("A really bad, horrible book.", None, &["Books"]),
                },
            ))
            .then_expect_events(vec![JournalEntryEvent::JournalEntryEdited {
                entry_id: E1,
                user_id: ALICE,
                text: "A really bad, horrible book.".to_string(),
                mood: None,
                tags: vec!["books".to_string()],
                sentiment: Sentiment {
                    compound: -8211,
                    ..Sentiment::of("A really bad, horrible book.")
                },
                written_at: now(),
                edited_at: now() + Duration::hours(1),
            }]);
        // an edit that changes nothing records nothing
        let same = JournalCommand::EditEntry {
            entry_id: E1,
            content: content(" The book was good. ", Some(5), &["HOME"]),
        };
        assert_eq!(
            decide(vec![written("The book was good.")], ALICE, same),
            Ok(vec![])
        );
        // edits are validated like writes
        let empty = JournalCommand::EditEntry {
            entry_id: E1,
            content: content("", None, &[]),
        };
        assert_invalid(decide(vec![written("x")], ALICE, empty), "text");
    }

    #[test]
    fn edit_and_delete_need_a_live_entry_of_ones_own() {
        let edit = JournalCommand::EditEntry {
            entry_id: E1,
            content: content("new", None, &[]),
        };
        let delete = JournalCommand::DeleteEntry { entry_id: E1 };
        for command in [edit, delete] {
            for (given, actor) in [
                (vec![], ALICE),                           // unknown
                (vec![written("mine")], BOB),              // someone else's
                (vec![written("mine"), deleted()], ALICE), // deleted
            ] {
                let err = decide(given, actor, command.clone()).unwrap_err();
                assert_eq!(
                    err,
                    DomainError::NotFound {
                        entity: ENTITY,
                        id: E1.to_string()
                    }
                );
            }
        }
        Fw::with(())
            .given(vec![written("mine")])
            .when(Issued::new(
                ALICE,
                now(),
                JournalCommand::DeleteEntry { entry_id: E1 },
            ))
            .then_expect_events(vec![deleted()]);
    }

    #[test]
    fn state_folds_and_round_trips() {
        let mut entry = JournalEntry::default();
        for e in [written("The book was good."), deleted()] {
            entry.apply(e);
        }
        assert_eq!(entry.owner(), Some(ALICE));
        assert_eq!(entry.text(), "The book was good.");
        assert_eq!(entry.sentiment().compound, 4404);
        assert!(entry.is_deleted());
        let back: JournalEntry =
            serde_json::from_value(serde_json::to_value(&entry).unwrap()).unwrap();
        assert_eq!(back, entry);
        let e = written("x");
        assert_eq!(e.event_type(), "JournalEntryWritten");
        assert_eq!(e.event_version(), "1");
        assert_eq!(e.entry_id(), E1);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["JournalEntryWritten"]["sentiment"]["compound"], 0);
        assert_eq!(crate::pillar_of(JournalEntry::TYPE), "journal");
    }
}

//! Full-text search over journal entries, in the read-model rows of `journal_entries`.
//!
//! The query language is web-search syntax on both backends: words (all must match, stemmed
//! for English), `"a phrase"`, `or` between alternatives, `-word` / `-"phrase"` to exclude.
//! Any input is safe: nothing a user types is ever parsed as SQL or as raw FTS syntax.
//!
//! - **PostgreSQL**: `to_tsvector('english', doc->>'text') @@ websearch_to_tsquery('english', q)`
//!   (websearch_to_tsquery accepts any text without a syntax error), ranked by `ts_rank`. The
//!   partial expression GIN index `read_model_rows_journal_text` (migration 0004) has the
//!   predicate `model LIKE 'journal_entries@%'`; the query repeats that condition literally, so
//!   the planner can prove the index applies (a condition on the active-generation subquery
//!   alone could not). With few entries per user the `(model, user_id, …)` btree wins, with
//!   many the GIN index does: the planner chooses by cost.
//! - **SQLite**: an FTS5 table `journal_search` (contentless, `contentless_delete=1`, porter
//!   stemmer) kept by triggers on `read_model_rows` for `journal_entries@*` rows (insert, the
//!   update an upsert turns into, delete — also when a retired generation is dropped). Its
//!   rowid is the `id` of `journal_search_keys` (model, user, row id), an INTEGER PRIMARY KEY
//!   that VACUUM never renumbers, unlike the implicit rowid of `read_model_rows`. The user's
//!   query is translated by [`fts5_query`], every term a quoted FTS5 string; results are ordered
//!   by `bm25`.
//!
//! Both resolve the active generation (`journal_entries@v[#gen]`) in the same statement, like
//! every other read-model query, so a blue-green switch never shows a half-built model.

use store::Store;
use uuid::Uuid;

use crate::read_models::{decode_pg, decode_sqlite};
use crate::{Projection, ProjectionError, ReadModels, Row};

/// The condition the PostgreSQL GIN index is partial on (repeated literally in the query).
const PG_INDEX_PREDICATE: &str = "model LIKE 'journal_entries@%'";

impl ReadModels {
    /// Up to `limit` rows of `projection`'s active generation (the `journal_entries` model),
    /// owned by `user_id`, whose document `text` matches `query`, best match first. A query
    /// with no searchable word matches nothing.
    pub async fn search_journal(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        let active =
            "COALESCE((SELECT active_model FROM projection_status WHERE projection = $3), $4)";
        match self.store() {
            Store::Postgres(s) => {
                let sql = format!(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE {PG_INDEX_PREDICATE} AND model = {active} AND user_id = $1 \
                       AND to_tsvector('english', doc->>'text') @@ websearch_to_tsquery('english', $2) \
                     ORDER BY ts_rank(to_tsvector('english', doc->>'text'), \
                                      websearch_to_tsquery('english', $2)) DESC, sort_key, row_id \
                     LIMIT $5"
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(query)
                    .bind(projection.name())
                    .bind(projection.model())
                    .bind(limit as i64)
                    .fetch_all(s.pool())
                    .await?;
                rows.iter().map(decode_pg).collect()
            }
            Store::Sqlite(s) => {
                let Some(fts) = fts5_query(query) else {
                    return Ok(Vec::new());
                };
                let sql = format!(
                    "SELECT r.user_id, r.row_id, r.grp, r.sort_key, r.doc FROM journal_search \
                     JOIN journal_search_keys k ON k.id = journal_search.rowid \
                     JOIN read_model_rows r \
                       ON r.model = k.model AND r.user_id = k.user_id AND r.row_id = k.row_id \
                     WHERE journal_search MATCH $2 AND k.model = {active} AND k.user_id = $1 \
                     ORDER BY bm25(journal_search), r.sort_key, r.row_id LIMIT $5"
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id.to_string())
                    .bind(fts)
                    .bind(projection.name())
                    .bind(projection.model())
                    .bind(limit as i64)
                    .fetch_all(s.reader())
                    .await?;
                rows.iter().map(decode_sqlite).collect()
            }
        }
    }
}

/// One term of a web-search query.
#[derive(Debug, PartialEq)]
enum Term {
    /// A word or a quoted phrase, as an FTS5 expression of quoted strings.
    Text { fts: String, negated: bool },
    /// The `or` keyword.
    Or,
}

/// Splits `query` like `websearch_to_tsquery` does: `"…"` phrases, `-` before a word or a
/// phrase, the word `or`; an unclosed quote runs to the end. A phrase becomes one FTS5 phrase;
/// a word is split at punctuation into pieces that must all match (as PostgreSQL's parser
/// does: `NEAR(anna` is `near` and `anna`). Terms without a letter or digit are dropped.
fn terms(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        let mut text = String::new();
        let phrase = chars.peek() == Some(&'"');
        if phrase {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                text.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                text.push(c);
                chars.next();
            }
        }
        if !phrase && !negated && text.eq_ignore_ascii_case("or") {
            terms.push(Term::Or);
            continue;
        }
        let pieces: Vec<String> = if phrase {
            vec![text]
        } else {
            text.split(|c: char| !c.is_alphanumeric())
                .map(str::to_string)
                .collect()
        };
        let pieces: Vec<String> = pieces
            .iter()
            .filter(|p| p.chars().any(char::is_alphanumeric))
            .map(|p| quoted(p))
            .collect();
        let fts = match pieces.len() {
            0 => continue,
            1 => pieces.concat(),
            _ => format!("({})", pieces.join(" AND ")),
        };
        terms.push(Term::Text { fts, negated });
    }
    terms
}

/// `text` as an FTS5 string: double quotes around, inner ones doubled. The tokenizer then
/// reads it as a phrase; no character inside is FTS5 syntax.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Translates a web-search query into an FTS5 query in which every term is a quoted string:
/// `a b or c -d` → `("a") AND ("b" OR "c") NOT "d"`. None when nothing positive is left to
/// match (no words, or only exclusions), which matches nothing.
///
/// ```
/// use projections::journal_search::fts5_query;
/// assert_eq!(fts5_query("walk park").as_deref(), Some(r#"("walk") AND ("park")"#));
/// assert_eq!(
///     fts5_query(r#"NEAR(x "y*" -z:"#).as_deref(),
///     Some(r#"(("NEAR" AND "x")) AND ("y*") NOT "z""#)
/// );
/// assert_eq!(fts5_query("- * :"), None);
/// ```
pub fn fts5_query(query: &str) -> Option<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut excluded = Vec::new();
    let mut or_pending = false;
    for term in terms(query) {
        match term {
            Term::Or => or_pending = !groups.is_empty(),
            Term::Text { fts, negated: true } => {
                excluded.push(fts);
                or_pending = false;
            }
            Term::Text { fts, .. } => {
                match groups.last_mut() {
                    Some(group) if or_pending => group.push(fts),
                    _ => groups.push(vec![fts]),
                }
                or_pending = false;
            }
        }
    }
    if groups.is_empty() {
        return None;
    }
    let mut fts = groups
        .iter()
        .map(|g| format!("({})", g.join(" OR ")))
        .collect::<Vec<_>>()
        .join(" AND ");
    for term in excluded {
        fts.push_str(" NOT ");
        fts.push_str(&term);
    }
    Some(fts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_search_syntax_translates_to_quoted_fts5() {
        assert_eq!(
            fts5_query(r#"rain or sun "long walk" -work"#).as_deref(),
            Some(r#"("rain" OR "sun") AND ("long walk") NOT "work""#)
        );
        assert_eq!(
            fts5_query(r#"say "he said ""hi"#).as_deref(),
            Some(r#"("say") AND ("he said ") AND ("hi")"#),
            "quotes pair up; an unclosed one runs to the end"
        );
        assert_eq!(fts5_query(r#"a"b"#).as_deref(), Some(r#"("a") AND ("b")"#));
        assert_eq!(fts5_query("or walk").as_deref(), Some(r#"("walk")"#));
        assert_eq!(fts5_query("coffee*").as_deref(), Some(r#"("coffee")"#));
        assert_eq!(
            fts5_query("dog-walk or 🙂 -x:y").as_deref(),
            Some(r#"(("dog" AND "walk")) NOT ("x" AND "y")"#),
            "a word splits at punctuation; a word without letters is dropped"
        );
        assert_eq!(fts5_query("-work"), None, "only exclusions match nothing");
        assert_eq!(fts5_query("   "), None);
        assert_eq!(
            fts5_query("café").as_deref(),
            Some(r#"("café")"#),
            "letters of any script are words"
        );
    }
}

//! Where a key path (`domoticz.devices[2].idx2`) is written in the config text, so that the sink
//! sections' own checks (`kamstrup_sinks::…::validate`) come out as `file:line:column` errors.
//!
//! Why `toml_edit` rather than `toml::Spanned` fields: the sink structs live in `kamstrup-sinks`,
//! which knows nothing of TOML, and mirroring each of them as a spanned raw struct here would be
//! a second copy of every section to keep in step. `toml_edit` is the parser `toml` already uses
//! (same version, no new code built); it keeps a span for every key, value, array item and table
//! header whichever TOML form the user chose (table, inline table, dotted keys, array of tables).

use kamstrup_sinks::PathPart;
use toml_edit::{ImDocument, Item};

/// The byte offset where `path` is written: the value of the last key found, an array item, or
/// the header of the deepest table that exists (for a key that is missing).
pub(crate) fn locate(text: &str, path: &[PathPart]) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let mut item: &Item = doc.as_item();
    let mut best = None;
    for part in path {
        let found = match part {
            PathPart::Key(k) => {
                item.as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .map(|(key, value)| {
                        // A value's span, or else its key's (implicit tables have none of their own).
                        let at = value.span().or_else(|| key.span()).map(|s| s.start);
                        (at, value)
                    })
            }
            PathPart::Index(i) => item.get(*i).map(|value| {
                let at = match value {
                    Item::Table(t) => t.span(),
                    other => other.span(),
                };
                (at.map(|s| s.start), value)
            }),
        };
        let Some((at, next)) = found else { break };
        best = at.or(best);
        item = next;
    }
    best
}

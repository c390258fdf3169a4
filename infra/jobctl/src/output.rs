//! What the commands print: aligned tables for people, JSON for scripts (`--json`), and
//! progress on standard error when it is a terminal.

use std::io::{IsTerminal, Write};

/// How a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// JSON on standard output instead of tables and sentences.
    pub json: bool,
}

impl Output {
    /// Prints `value` as one line of JSON.
    pub fn json(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// Prints a table with a header row; columns padded to their widest cell.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        print!("{}", table(headers, rows));
    }
}

/// `headers` and `rows` as an aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        // Padded by hand: `format!`'s `{:<width$}` panics past a width of u16::MAX.
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width.saturating_sub(cell.chars().count()))))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text += &line(row.iter().map(String::as_str).collect());
    }
    text
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// A progress line on standard error (`label done/total`), drawn only on a terminal and
/// cleared when dropped.
#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    total: Option<usize>,
    shown: bool,
}

impl Progress {
    /// A progress line for `label`, out of `total` when known.
    pub fn new(label: &'static str, total: Option<usize>) -> Self {
        Self { label, total, shown: std::io::stderr().is_terminal() }
    }

    /// Shows `done`.
    pub fn set(&self, done: usize) {
        if !self.shown {
            return;
        }
        let total = self.total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{} {done}{total}", self.label);
        let _ = err.flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let text =
            table(&["job", "n"], &[vec!["store_sync".into(), "3".into()], vec!["x".into(), "120".into()]]);
        assert_eq!(text, "job         n\nstore_sync  3\nx           120\n");
    }

    #[test]
    fn a_cell_wider_than_format_can_pad_is_printed_whole() {
        // `format!`'s width stops at u16::MAX; a cell past it is padded by hand.
        let wide = "x".repeat(70_000);
        let text = table(&["a", "b"], &[vec![wide.clone(), "1".into()], vec!["y".into(), "2".into()]]);
        assert_eq!(text.lines().nth(1), Some(format!("{wide}  1").as_str()));
        assert_eq!(text.lines().nth(2).map(str::len), Some(70_000 + 3));
    }

    #[test]
    fn truncation_keeps_short_text_and_marks_cut_text() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a longer message", 8), "a longe…");
    }
}

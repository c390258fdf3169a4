//! `jobctl template`: renders `template.yaml` from the registry, prints, writes or checks it.

use std::io::Write as _;

use super::CommandError;
use crate::template::{self, TemplateError};

/// What to do with the rendered template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print it.
    Print,
    /// Write it to the repository's `template.yaml` (when it differs).
    Write,
    /// Compare it with the repository's `template.yaml`; differing is an error.
    Check,
}

/// Renders the repository's template and prints, writes or checks it.
///
/// # Errors
/// [`CommandError::Template`] when it cannot be rendered, read or written;
/// [`CommandError::Stale`] when `Check` finds the file different.
pub fn template(mode: Mode) -> Result<(), CommandError> {
    let root = template::repository_root();
    let rendered = template::render_repository(&root)?;
    if mode == Mode::Print {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(rendered.as_bytes())
            .map_err(|source| TemplateError::Write { path: "standard output".into(), source }.into());
    }
    let path = root.join(template::TEMPLATE);
    // A template that is not there yet differs from the render; --write creates it.
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(TemplateError::Read { path, source }.into()),
    };
    let Some(difference) = template::first_difference(&rendered, &committed) else {
        eprintln!("{} is up to date", path.display());
        return Ok(());
    };
    match mode {
        Mode::Check => Err(CommandError::Stale(format!(
            "{} is not what the registry renders ({difference}); run `{}`",
            path.display(),
            template::WRITE_COMMAND
        ))),
        _ => {
            std::fs::write(&path, &rendered)
                .map_err(|source| TemplateError::Write { path: path.clone(), source })?;
            eprintln!(
                "wrote {} ({} lines; it differed at {difference})",
                path.display(),
                rendered.lines().count()
            );
            Ok(())
        }
    }
}

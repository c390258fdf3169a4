//! The docs say what the registry declares: the README's job table is rendered from it.

const BEGIN: &str = "<!-- jobs: rendered from jobctl's registry";
const END: &str = "<!-- end of jobs -->";

#[test]
fn the_readmes_job_table_is_the_registrys() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let start = readme.find(BEGIN).expect("the README marks where the job table begins");
    let table_start = start + readme[start..].find('\n').expect("a line after the marker") + 1;
    let end = readme.find(END).expect("the README marks where the job table ends");
    let committed = readme[table_start..end].trim();
    let rendered = jobctl::registry::jobs_markdown(&jobctl::registry::specs().expect("registry"));
    assert!(
        committed == rendered.trim(),
        "README.md's job table is not the registry's; render it with `cargo run -p jobctl -- jobs --markdown`\n\
         and paste it between the markers. Rendered:\n{rendered}"
    );
}

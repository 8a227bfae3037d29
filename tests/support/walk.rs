//! A guide's walked blocks: every command block marked `<!-- walk: NAME -->` in a Markdown
//! guide, in order, for the tests that run the guide as written (getting-started, migrating).

/// The blocks of `guide` marked `<!-- walk: NAME -->`, by name, in order; `doc` names the
/// guide in the failure when a marked block is not a ```` ```sh ```` block.
pub fn walked_blocks(guide: &str, doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- walk: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert_eq!(
            fence, "```sh",
            "{doc}: the block after walk: {name} must be ```sh"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push((name.to_string(), body.join("\n") + "\n"));
    }
    blocks
}

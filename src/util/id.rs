//! Short forms of the long hexadecimal IDs berth prints (spec hashes, image and container IDs,
//! git commits). Pure.

/// The first 12 characters, as `docker ps` and `git log --oneline` show them; the whole
/// string when it is shorter (or when 12 bytes would cut a character).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn keeps_twelve_characters_or_the_whole_string() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(""), "");
    }
}

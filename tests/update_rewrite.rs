//! The rewrite of an image where it is defined, golden: a Compose `image:` line (plain,
//! quoted, with comments) and the `.env` variable it is interpolated from; every other byte
//! stays as it was.

use berth::update::rewrite::{RewriteError, Site, compose_image, env_value};
use indoc::indoc;

const COMPOSE: &str = indoc! {r#"
    # The shop.
    services:
      web:
        # pinned until the 1.5 migration is done
        image: registry.example/shop/web:1.4.0   # bumped by berth
        ports: ["8080:80"]
      api:
        image: "registry.example/shop/api:${API_TAG:-1.0.0}" # from .env
      worker:
          image:   'registry.example/shop/worker:2.0.0'
"#};

#[test]
fn a_plain_image_line_keeps_its_comments_and_spacing() {
    let site = compose_image(
        COMPOSE,
        5,
        12,
        "registry.example/shop/web:1.4.0",
        "registry.example/shop/web:1.5.2",
    )
    .unwrap();
    let Site::Compose(out) = site else {
        panic!("expected a Compose edit, got {site:?}")
    };
    assert_eq!(
        out,
        COMPOSE.replace(
            "image: registry.example/shop/web:1.4.0   # bumped by berth",
            "image: registry.example/shop/web:1.5.2   # bumped by berth"
        )
    );
    assert_eq!(out.lines().count(), COMPOSE.lines().count());
}

#[test]
fn a_quoted_image_keeps_its_quotes() {
    let Site::Compose(out) = compose_image(
        COMPOSE,
        10,
        16,
        "registry.example/shop/worker:2.0.0",
        "registry.example/shop/worker:2.1.0",
    )
    .unwrap() else {
        panic!("expected a Compose edit")
    };
    assert!(out.contains("      image:   'registry.example/shop/worker:2.1.0'\n"));
}

#[test]
fn an_interpolated_tag_is_edited_in_the_env_file() {
    let site = compose_image(
        COMPOSE,
        8,
        12,
        "registry.example/shop/api:1.2.0",
        "registry.example/shop/api:1.3.0",
    )
    .unwrap();
    assert_eq!(
        site,
        Site::Env {
            var: "API_TAG".into(),
            old: "1.2.0".into(),
            new: "1.3.0".into()
        }
    );
    let env = indoc! {r#"
        # versions, kept by hand and by berth
        API_TAG=1.1.0
        export  WEB_TAG = "9"
        API_TAG="1.2.0"   # the last one wins
        OTHER=x
    "#};
    let out = env_value(env, "API_TAG", "1.2.0", "1.3.0").unwrap();
    assert_eq!(
        out,
        indoc! {r#"
        # versions, kept by hand and by berth
        API_TAG=1.1.0
        export  WEB_TAG = "9"
        API_TAG="1.3.0"   # the last one wins
        OTHER=x
    "#}
    );
    assert_eq!(
        env_value("export WEB_TAG=9 # c\n", "WEB_TAG", "9", "10").unwrap(),
        "export WEB_TAG=10 # c\n"
    );
}

#[test]
fn a_file_that_changed_since_it_was_read_is_refused() {
    assert!(matches!(
        compose_image(COMPOSE, 5, 12, "registry.example/shop/web:1.3.0", "x:1"),
        Err(RewriteError::Changed { .. })
    ));
    assert!(matches!(
        env_value("API_TAG=1.1.0\n", "API_TAG", "1.2.0", "1.3.0"),
        Err(RewriteError::Changed { .. })
    ));
    assert!(matches!(
        env_value("OTHER=1\n", "API_TAG", "1.2.0", "1.3.0"),
        Err(RewriteError::NotInEnv { .. })
    ));
}

#[test]
fn two_variables_in_one_image_are_not_edited() {
    let text = "services:\n  a:\n    image: ${REG}/app:${TAG}\n";
    assert!(matches!(
        compose_image(text, 3, 12, "r/app:1", "r/app:2"),
        Err(RewriteError::Unsupported { .. })
    ));
}

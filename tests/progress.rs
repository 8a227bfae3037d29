//! `berth apply`'s live progress (`berth::progress`): the terminal table, the lines a pipe
//! gets, what counts as a change, and the heartbeat — golden text.

use berth::progress::{self, Row};
use berth::telemetry::status::Phase;

fn row(scope: &str, phase: Phase, ready: u32, reason: &str, left: Option<u64>) -> Row {
    Row {
        scope: scope.into(),
        phase,
        revision: Some(3),
        ready,
        replicas: 2,
        reason: reason.into(),
        left,
    }
}

fn rows() -> Vec<Row> {
    vec![
        row("shop/db", Phase::Idle, 2, "", None),
        row(
            "shop/web",
            Phase::Progressing,
            1,
            "waits: replica 2: readiness probe has not passed yet",
            Some(38),
        ),
        row(
            "shop/worker",
            Phase::Reverted,
            2,
            "r3 failed; r2 runs again",
            None,
        ),
    ]
}

#[test]
fn terminal_table_aligns_services_and_shows_time_left() {
    assert_eq!(
        progress::frame(&rows(), 12, false),
        "shop/db      Idle         r3      2/2\n\
         shop/web     Progressing  r3      1/2  waits: replica 2: readiness probe has not passed yet  (38s left)\n\
         shop/worker  Reverted     r3      2/2  r3 failed; r2 runs again\n\
         12s\n"
    );
}

#[test]
fn colour_only_when_asked() {
    let plain = progress::frame(&rows(), 1, false);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let coloured = progress::frame(&rows(), 1, true);
    assert!(
        coloured.contains("\x1b[33mProgressing\x1b[0m"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[31mReverted\x1b[0m"), "{coloured:?}");
}

#[test]
fn a_pipe_gets_one_plain_line_per_change() {
    let before = rows();
    let mut after = rows();
    // Time passing alone is not a change.
    after[1].left = Some(30);
    assert!(progress::changed(&before, &after).is_empty());
    after[1].ready = 2;
    after[1].reason = "waits: replica 2: holding ready for min_ready (5s)".into();
    let lines: Vec<String> = progress::changed(&before, &after)
        .into_iter()
        .map(progress::line)
        .collect();
    assert_eq!(
        lines,
        [
            "shop/web Progressing r3 ready 2/2: waits: replica 2: holding ready for min_ready (5s) (30s before the deadline)"
        ]
    );
}

#[test]
fn first_round_reports_every_service() {
    let lines: Vec<String> = progress::changed(&[], &rows())
        .into_iter()
        .map(progress::line)
        .collect();
    assert_eq!(
        lines.join("\n"),
        "shop/db Idle r3 ready 2/2\n\
         shop/web Progressing r3 ready 1/2: waits: replica 2: readiness probe has not passed yet (38s before the deadline)\n\
         shop/worker Reverted r3 ready 2/2: r3 failed; r2 runs again"
    );
}

#[test]
fn heartbeat_names_only_what_still_moves() {
    assert_eq!(
        progress::heartbeat(&rows(), 25),
        [
            "… 25s: shop/web Progressing r3 ready 1/2: waits: replica 2: readiness probe has not passed yet (38s before the deadline)"
        ]
    );
}

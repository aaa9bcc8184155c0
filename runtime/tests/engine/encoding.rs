//! Binary and JSON round trips, and refusal of damaged tables.

use agentpolicy_runtime::*;
use sha2::{Digest, Sha256};

use crate::fixture::*;

fn sample() -> DecisionTable {
    table_with(vec![
        rule(
            INTAKE,
            RuleKind::Allow,
            Some(WIRE_FUNDS),
            None,
            Some(vec![cmp(0, CmpOp::Le, usd(100))]),
        ),
        rule(
            INTAKE,
            RuleKind::Escalate,
            None,
            Some(LEGAL),
            Some(vec![cmp(16, CmpOp::Lt, 850_000)]),
        ),
        rule(
            PARTNER,
            RuleKind::Deny,
            Some(SEND_EMAIL),
            None,
            Some(vec![cmp(0, CmpOp::Eq, 0)]),
        ),
        rule(PARTNER, RuleKind::Allow, Some(SEND_EMAIL), None, None),
    ])
}

/// A binary table with a correct header around any payload.
fn wrap(version: u32, hash: ContentHash, payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

#[test]
fn binary_and_json_round_trip() {
    let table = sample();
    let bytes = table.to_bytes();
    assert_eq!(&bytes[..8], b"AGPTABLE");
    assert_eq!(DecisionTable::from_bytes(&bytes).unwrap(), table);
    let json = table.to_json();
    assert_eq!(DecisionTable::from_json(&json).unwrap(), table);
    // The binary form is much smaller than the JSON.
    assert!(
        bytes.len() * 3 < json.len(),
        "{} vs {}",
        bytes.len(),
        json.len()
    );
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample().to_bytes();
    for len in 0..bytes.len() {
        let err = DecisionTable::from_bytes(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, LoadError::Truncated { .. }),
            "length {len}: {err}"
        );
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let bytes = sample().to_bytes();
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5a;
        let err = DecisionTable::from_bytes(&damaged).unwrap_err();
        let expected = match at {
            0..8 => matches!(err, LoadError::NotATable),
            8..12 => matches!(err, LoadError::UnsupportedVersion { .. }),
            12..44 => matches!(err, LoadError::HeaderMismatch),
            44..52 => matches!(
                err,
                LoadError::Truncated { .. } | LoadError::TrailingBytes { .. }
            ),
            _ => matches!(err, LoadError::Corrupted),
        };
        assert!(expected, "byte {at}: {err:?}");
    }
}

#[test]
fn trailing_bytes_wrong_version_and_garbage_are_refused_with_clear_messages() {
    let table = sample();
    let mut bytes = table.to_bytes();
    bytes.push(0);
    let err = DecisionTable::from_bytes(&bytes).unwrap_err();
    assert_eq!(err, LoadError::TrailingBytes { extra: 1 });
    assert_eq!(
        err.to_string(),
        "decision table has 1 unexpected bytes after its payload"
    );

    let err = DecisionTable::from_bytes(b"{\"format_version\": 1}").unwrap_err();
    assert_eq!(err, LoadError::NotATable);
    assert!(err.to_string().contains("agentpolicy build"));

    let newer = FORMAT_VERSION + 1;
    let err = DecisionTable::from_bytes(&wrap(newer, table.source_hash(), b"")).unwrap_err();
    assert_eq!(
        err,
        LoadError::UnsupportedVersion {
            found: newer,
            supported: FORMAT_VERSION
        }
    );
    assert!(
        err.to_string()
            .contains(&format!("version {newer} is not supported"))
    );

    let err = DecisionTable::from_bytes(&wrap(FORMAT_VERSION, table.source_hash(), &[0xff; 7]))
        .unwrap_err();
    assert!(matches!(err, LoadError::Malformed(_)), "{err:?}");
}

#[test]
fn a_well_encoded_but_inconsistent_table_is_refused() {
    let mut data = sample().into_data();
    data.cells.pop();
    let payload = postcard::to_allocvec(&data).unwrap();
    let err =
        DecisionTable::from_bytes(&wrap(FORMAT_VERSION, data.source_hash, &payload)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid decision table: 9 cells for 2 agents and 5 tools"
    );

    let mut data = sample().into_data();
    data.cells[WIRE_FUNDS as usize].allow[0].condition = Some(Condition {
        reads: 1,
        code: vec![Op::Truthy { slot: Slot(0) }, Op::And],
    });
    let json = serde_json::to_string(&data).unwrap();
    let err = DecisionTable::from_json(&json).unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err:?}");
}

#[test]
fn validation_catches_what_decide_relies_on() {
    let base = sample().into_data();
    let refuse = |mutate: &dyn Fn(&mut TableData), expect: &str| {
        let mut data = base.clone();
        mutate(&mut data);
        let err = DecisionTable::new(data).unwrap_err();
        assert!(
            err.reason.contains(expect),
            "{} does not contain {expect}",
            err.reason
        );
    };
    refuse(
        &|d| {
            d.tools[2].params.extend((0..14).map(|i| Param {
                name: format!("p{i}"),
                ty: ValueType::Bool,
                optional: true,
            }))
        },
        "17 parameters",
    );
    refuse(&|d| d.rules[0].route = Some(RouteId(0)), "has a route");
    refuse(&|d| d.rules[1].route = Some(RouteId(9)), "unknown route");
    refuse(&|d| d.cells[3].granted = false, "granted flag");
    refuse(&|d| d.agents.push(d.agents[0].clone()), "appears twice");
    // `partner` sends email: a text compared by order, and a constant past the dictionary.
    let partner_email = 5 + SEND_EMAIL as usize;
    refuse(
        &|d| {
            d.cells[partner_email].deny[0].condition =
                Some(Condition::new(vec![cmp(0, CmpOp::Lt, 0)]).unwrap())
        },
        "text compared with `<`",
    );
    refuse(
        &|d| {
            d.cells[partner_email].deny[0].condition =
                Some(Condition::new(vec![cmp(0, CmpOp::Eq, 5)]).unwrap())
        },
        "text constant id 5",
    );
    refuse(
        &|d| {
            d.cells[partner_email].deny[0].condition =
                Some(Condition::new(vec![cmp(7, CmpOp::Eq, 5)]).unwrap())
        },
        "reads argument #7",
    );
    let period = |years, ms| Period { years, ms };
    refuse(
        &|d| d.retention.default = Some(period(0, 0)),
        "default retention period 0ms is out of range",
    );
    refuse(
        &|d| d.retention.default = Some(period(MAX_RETENTION_YEARS + 1, 0)),
        "out of range",
    );
    refuse(
        &|d| {
            d.retention.tiers.push(TierRetention {
                tier: TierId(9),
                period: period(1, 0),
            })
        },
        "retention clause names an unknown tier",
    );
    refuse(
        &|d| {
            let clause = TierRetention {
                tier: TierId(1),
                period: period(1, 0),
            };
            d.retention.tiers.extend([clause, clause]);
        },
        "has two retention clauses",
    );
}

#[test]
fn the_retention_schedule_survives_both_encodings() {
    let mut data = sample().into_data();
    data.retention = Retention {
        default: Some(Period { years: 5, ms: 0 }),
        tiers: vec![TierRetention {
            tier: TierId(2),
            period: Period { years: 7, ms: 0 },
        }],
    };
    let table = DecisionTable::new(data.clone()).unwrap();
    let from_bytes = DecisionTable::from_bytes(&table.to_bytes()).unwrap();
    assert_eq!(from_bytes.data().retention, data.retention);
    let from_json = DecisionTable::from_json(&table.to_json()).unwrap();
    assert_eq!(from_json.data().retention, data.retention);
}

#[test]
fn source_hash_is_recorded_and_shown() {
    let table = sample();
    assert_eq!(
        table.source_hash(),
        source_hash(&[("firm.agentpolicy", "policy acme")])
    );
    assert!(table.source_hash().to_string().starts_with("sha256:"));
}

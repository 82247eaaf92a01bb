//! Property test: any decimal that fits the store comes back structurally identical
//! (same mantissa, same exponent, same text), through a real file.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

mod common;

use common::*;
use kamstrup_decimal::Decimal;
use kamstrup_store::Store;
use proptest::prelude::*;

fn decimal() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), -127i16..=127).prop_map(|(m, e)| Decimal::new(i128::from(m), e).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn decimals_round_trip_identically(values in proptest::collection::vec(decimal(), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("p.db")).unwrap();
        let m = meter(&mut store, 1, "heat");
        let mut reading = reading_at(t("2024-03-01T00:00:00Z"), vec![]);
        for (i, v) in values.iter().enumerate() {
            let mut r = reg(&format!("r{i}"), "0");
            r.value = *v;
            reading.registers.push(r);
        }
        let id = store.insert_reading(m, &reading, None).unwrap();
        drop(store);
        let store = Store::open_read_only(&dir.path().join("p.db")).unwrap();
        let back = store.reading(id).unwrap().unwrap();
        prop_assert_eq!(&back.reading, &reading);
        for (a, b) in back.reading.registers.iter().zip(&values) {
            prop_assert_eq!(a.value.to_string(), b.to_string());
        }
        for (i, v) in values.iter().enumerate() {
            let (_, last) = store.last_value(m, &format!("r{i}")).unwrap().unwrap();
            prop_assert_eq!(last, *v);
        }
    }
}

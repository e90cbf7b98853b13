//! Kubernetes resource quantities (`64Mi`, `1000m`, `0.5`, `1e3`) as exact numbers, so that the
//! drift check compares what a quantity means, not how it is written: the apiserver stores
//! `1024Mi` as `1Gi` and `1000m` as `1`.
//!
//! The grammar is apimachinery's `resource.Quantity`: an optionally signed decimal number and a
//! suffix, binary SI (`Ki` ... `Ei`), decimal SI (`n`, `u`, `m`, none, `k`, `M` ... `E`) or a
//! decimal exponent (`e3`, `E-2`). As in Kubernetes, precision below 10^-9 rounds up.

/// The value of `s` in units of 10^-9, or `None` when `s` is not a quantity (or beyond what an
/// i128 of nano-units holds, about 1.7 * 10^29).
pub fn parse(s: &str) -> Option<i128> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    // digits as an integer, and the power of ten they are scaled by
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c - b'0'))?;
    }
    let mut exp10: i32 = -(frac_part.len() as i32) + 9; // in nano-units
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        e if e.starts_with(['e', 'E']) && e.len() > 1 => {
            let n: i32 = e[1..].parse().ok()?;
            if e[1..].starts_with('+') {
                return None;
            }
            exp10 = exp10.checked_add(n)?;
        }
        _ => return None,
    }
    mantissa = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    let value = if exp10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exp10 as u32)?)?
    } else {
        // below a nano-unit: round up, as Kubernetes does
        let div = 10i128.checked_pow(exp10.unsigned_abs())?;
        let q = mantissa / div;
        if mantissa % div == 0 { q } else { q + 1 }
    };
    Some(if negative { -value } else { value })
}

/// Whether two quantity strings mean the same amount (text equality when either does not parse).
pub fn same(a: &str, b: &str) -> bool {
    a == b || matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANO: i128 = 1_000_000_000;

    #[test]
    fn parses_every_suffix() {
        assert_eq!(parse("1"), Some(NANO));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("1000m"), Some(NANO));
        assert_eq!(parse("50m"), Some(50_000_000));
        assert_eq!(parse("0.5"), Some(NANO / 2));
        assert_eq!(parse(".5"), Some(NANO / 2));
        assert_eq!(parse("5."), Some(5 * NANO));
        assert_eq!(parse("1Ki"), Some(1024 * NANO));
        assert_eq!(parse("64Mi"), Some(64 << 20).map(|v: i128| v * NANO));
        assert_eq!(parse("1Gi"), Some((1i128 << 30) * NANO));
        assert_eq!(parse("1Ei"), Some((1i128 << 60) * NANO));
        assert_eq!(parse("1k"), Some(1000 * NANO));
        assert_eq!(parse("1M"), Some(1_000_000 * NANO));
        assert_eq!(parse("2E"), Some(2_000_000_000_000_000_000 * NANO));
        assert_eq!(parse("1n"), Some(1));
        assert_eq!(parse("1u"), Some(1000));
        assert_eq!(parse("1e3"), Some(1000 * NANO));
        assert_eq!(parse("1E3"), Some(1000 * NANO));
        assert_eq!(parse("1e-3"), Some(NANO / 1000));
        assert_eq!(parse("-1"), Some(-NANO));
        assert_eq!(parse("+1"), Some(NANO));
        // below a nano-unit rounds up
        assert_eq!(parse("0.1n"), Some(1));
        assert_eq!(parse("1.0000000001"), Some(NANO + 1));
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in [
            "",
            "Mi",
            "m",
            ".",
            "-",
            "1.2.3",
            "1MB",
            "1mi",
            "1 Mi",
            "1e",
            "1e+3",
            "1ee3",
            "abc",
            "1Mi ",
            "0x10",
            "1e99",
            "9999999999999999999999999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn non_canonical_forms_equal_what_the_apiserver_stores() {
        // (as written in values.yaml or a flag, as the apiserver stores it)
        for (written, stored) in [
            ("1024Mi", "1Gi"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5Gi", "1536Mi"),
            ("1e3", "1k"),
            ("128974848", "123Mi"),
            ("100M", "100M"),
            ("0.1", "100m"),
            ("2048Ki", "2Mi"),
            ("1000k", "1M"),
        ] {
            assert!(same(written, stored), "{written} == {stored}");
        }
        for (a, b) in [
            ("1Gi", "1G"),
            ("1000m", "1001m"),
            ("64Mi", "64M"),
            ("1", "1Ki"),
        ] {
            assert!(!same(a, b), "{a} != {b}");
        }
        // unparseable values compare as text
        assert!(same("weird", "weird"));
        assert!(!same("weird", "1"));
    }
}

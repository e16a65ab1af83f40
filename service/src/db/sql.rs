//! Small pieces every table module uses to write its queries and read
//! their values; no table of its own, so any module may use it.

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `cols` parameters.
pub(super) fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// `$from, $from+1, …` for `n` parameters (an `in (…)` list).
pub(super) fn numbered(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A stored count, seq or id as the protocol's unsigned integer (a
/// negative one, which the schema never stores, as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(numbered(2, 3), "$2, $3, $4");
        assert_eq!(to_u64(-1), 0);
    }
}

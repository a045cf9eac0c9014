//! Median of repeated runs and ratios between candidates.

/// The median; the mean of the two middle values for an even count. Non-finite values
/// (a failed division upstream) are left out. `None` when nothing is left.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let upper = v.get(mid).copied()?;
    if v.len() % 2 == 1 {
        Some(upper)
    } else {
        let lower = v.get(mid.checked_sub(1)?).copied()?;
        Some((lower + upper) / 2.0)
    }
}

/// `value / reference`, or `None` when the reference is zero (or either is not finite).
pub fn ratio(value: f64, reference: f64) -> Option<f64> {
    if !value.is_finite() || !reference.is_finite() || reference.abs() < 1e-12 {
        return None;
    }
    Some(value / reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn median_is_robust_to_one_outlier_and_skips_nan() {
        assert_eq!(median(&[0.3, 0.31, 9.0]), Some(0.31));
        assert_eq!(median(&[f64::NAN, 1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn ratio_refuses_a_zero_reference() {
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(0.0, 4.0), Some(0.0));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::INFINITY, 1.0), None);
    }
}

//! "Did you mean" suggestions from edit distance, shared by the expression
//! parser and the rules.yaml loader.

/// Optimal string alignment distance (Levenshtein plus adjacent
/// transpositions), counted in chars, case-insensitively.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// The candidate closest to `word`, if it is close enough to be a plausible
/// typo: at most 1 edit for words of up to 3 chars, 2 up to 6, a third of
/// the length beyond. Ties go to the earlier candidate.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = match len {
        0 => return None,
        1..=3 => 1,
        4..=6 => 2,
        _ => len / 3,
    };
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `", did you mean 'x'?"` when a close candidate exists, else `""`.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(word, candidates) {
        Some(c) => format!(", did you mean '{c}'?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("latency", "latency"), 0);
        assert_eq!(edit_distance("latncy", "latency"), 1);
        assert_eq!(edit_distance("laetncy", "latency"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ERROR", "error"), 0);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("keep_fireing_for", ["for", "keep_firing_for"]),
            Some("keep_firing_for")
        );
        assert_eq!(closest("zzzzzz", ["latency", "prediction"]), None);
        assert_eq!(
            did_you_mean("sevrity", ["severity"]),
            ", did you mean 'severity'?"
        );
        assert_eq!(did_you_mean("", ["a"]), "");
    }
}

//! "Did you mean …?": the closest candidate name by edit distance.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a, I, S>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str> + 'a,
{
    let lower = name.to_lowercase();
    let mut best: Option<(usize, String)> = None;
    for candidate in candidates {
        let candidate = candidate.as_ref();
        if candidate == name {
            continue;
        }
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
        let limit = (name.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.as_ref().is_none_or(|(d, _)| distance < *d) {
            best = Some((distance, candidate.to_owned()));
        }
    }
    best.map(|(_, c)| c)
}

/// `Some("did you mean `x`?")` when a candidate is close.
pub(crate) fn did_you_mean<'a, I, S>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str> + 'a,
{
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let fields = ["entrypoint", "cmd", "env", "workdir"];
        assert_eq!(closest("entrypont", fields), Some("entrypoint".into()));
        assert_eq!(closest("ENV", fields), Some("env".into()));
        assert_eq!(closest("xyz", fields), None);
        assert_eq!(closest("cdm", fields), Some("cmd".into()));
    }
}

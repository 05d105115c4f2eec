//! How the lexical and abbreviation channels read a label or a query: the
//! grammar curators write cell, tissue and disease labels in, reduced to one
//! token form shared by the index and the query.
//!
//! [`tokens`] applies, in order: Unicode NFKC; Greek letters to their names
//! (`γδ` → `gamma delta`); marker notation (`CD8+` → `cd8 positive`, `CD16−`
//! or a trailing `-` → `negative`, `CD56bright`/`CD8hi` → `high`,
//! `CD16lo`/`CD56dim` → `low`, and the same words after a hyphen, so
//! `CD8-positive` and `CD8+` read alike; a CD marker with no level is
//! `positive`, and `CD4-CD8-` is `cd4 negative cd8 negative`); splitting on
//! every character that is not a letter or digit; lowercasing; the two-letter Greek shorthands of
//! T-cell receptors (`gd` → `gamma delta`, `ab` → `alpha beta`); British
//! spellings (`tumour`, `haem…`, `oesophag…`) to American; and a light
//! stemmer for plurals (`cells`, `carcinomas`, `bodies`, `vertebrae`).
//! Stop words (`of`, `the`, `and`, …) are dropped, so `macrophage of
//! appendix` and `appendix macrophage` give the same bag of tokens.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// Words that carry no meaning for matching.
const STOP_WORDS: [&str; 12] = [
    "of", "the", "and", "in", "a", "an", "with", "to", "for", "on", "by", "or",
];

/// The matching tokens of `text` (see the module docs). Never contains an
/// empty token.
pub fn tokens(text: &str) -> Vec<String> {
    let text: Cow<str> = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(spell_greek(&text.nfkc().collect::<String>()))
    };
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() {
            word.push(c);
            i += 1;
            continue;
        }
        let had_word = !word.is_empty();
        let after_marker = had_word && is_cd_marker(&word.to_lowercase());
        flush(&mut word, &mut out);
        let next_is_word = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            '+' if had_word => out.push("positive".into()),
            // A trailing minus, or one between two markers (`CD4-CD8-`).
            '-' | '\u{2212}' | '\u{2013}'
                if had_word
                    && (!next_is_word
                        || after_marker
                            && is_cd_marker(&word_at(&chars, i + 1).to_lowercase())) =>
            {
                out.push("negative".into())
            }
            _ => {}
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    // A CD marker written bare (`CD8 T cell`) is one the cells carry.
    let mut i = 0;
    while i < out.len() {
        if is_cd_marker(&out[i]) && !out.get(i + 1).is_some_and(|t| is_level(t)) {
            out.insert(i + 1, "positive".into());
        }
        i += 1;
    }
    out
}

/// The expression levels [`tokens`] reads markers with.
fn is_level(token: &str) -> bool {
    matches!(token, "positive" | "negative" | "high" | "low")
}

/// A cluster-of-differentiation marker token: `cd`, digits, at most one
/// letter (`cd8`, `cd8a`, `cd45r`).
fn is_cd_marker(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("cd") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &rest.as_bytes()[digits..];
    digits >= 1 && tail.len() <= 1 && tail.iter().all(u8::is_ascii_lowercase)
}

/// The alphanumeric word starting at `start`.
fn word_at(chars: &[char], start: usize) -> String {
    chars
        .iter()
        .skip(start)
        .take_while(|c| c.is_alphanumeric())
        .collect()
}

/// `text` with marker notation written the way ontology labels write it
/// (`CD8+ T cells` → `CD8-positive T cells`, `CD16- monocyte` →
/// `CD16-negative monocyte`, `CD56bright` → `CD56-bright`, `CD8hi` →
/// `CD8-high`, `CD16lo` → `CD16-low`, a bare `CD8 T` → `CD8-positive T`),
/// or `None` when nothing changes. The dense channel embeds this form beside
/// the query.
pub fn label_style(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut word = String::new();
    let mut changed = false;
    let flush_word = |word: &mut String, out: &mut String, changed: &mut bool| {
        let lower = word.to_lowercase();
        let split = marker_suffix(&lower).map(|(base, _)| {
            let suffix = word[base.len()..].to_lowercase();
            let spelled = match suffix.as_str() {
                "hi" => "high".to_string(),
                "lo" => "low".to_string(),
                "pos" => "positive".to_string(),
                "neg" => "negative".to_string(),
                _ => suffix,
            };
            (base.len(), spelled)
        });
        match split {
            Some((n, suffix)) => {
                out.push_str(&word[..n]);
                out.push('-');
                out.push_str(&suffix);
                *changed = true;
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        let had_word = !word.is_empty();
        let ends_marker = had_word && word.chars().any(|c| c.is_ascii_digit());
        let bare = !matches!(c, '+' | '-' | '\u{2212}')
            && is_bare_cd_marker(&word, &word_at(&chars, i + 1));
        flush_word(&mut word, &mut out, &mut changed);
        if bare {
            out.push_str("-positive");
            changed = true;
        }
        let next_is_word = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            '+' if had_word => {
                out.push_str("-positive");
                changed = true;
                if next_is_word {
                    out.push(' ');
                }
            }
            '-' | '\u{2212}' if ends_marker && !next_is_word => {
                out.push_str("-negative");
                changed = true;
            }
            _ => out.push(c),
        }
    }
    let bare = is_bare_cd_marker(&word, "");
    flush_word(&mut word, &mut out, &mut changed);
    if bare {
        out.push_str("-positive");
        changed = true;
    }
    changed.then_some(out)
}

/// Whether `word`, followed by the word `next`, is a CD marker written
/// without a level (`CD8 T`, not `CD8 positive`, `CD56bright` or `CD8+`).
fn is_bare_cd_marker(word: &str, next: &str) -> bool {
    let lower = word.to_lowercase();
    is_cd_marker(&lower) && {
        let mut next_tokens = Vec::new();
        flush(&mut next.to_string(), &mut next_tokens);
        !next_tokens.first().is_some_and(|t| is_level(t))
    }
}

/// The last word of `text`, lowercased (what [`initialisms`] may drop).
pub fn last_word(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .rfind(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The initialism of `text` ([`initialism`]), and also the one without its
/// last word when that word is one of `heads` (the ontology's common head
/// words: `mucosal-associated invariant T cell` → `maitc` and `mait`).
pub fn initialisms(text: &str, heads: &[String]) -> Vec<String> {
    let mut out: Vec<String> = initialism(text).into_iter().collect();
    if let Some(last) = last_word(text) {
        if heads.contains(&last) {
            let cut = text.to_lowercase();
            if let Some(i) = cut.rfind(last.as_str()) {
                out.extend(initialism(&cut[..i]));
            }
        }
    }
    out
}

/// Content tokens of `text` before stemming, lowercased, in order: what an
/// initialism is made of (`non-small cell lung carcinoma` → `n s c l c`).
pub fn initialism(text: &str) -> Option<String> {
    let mut letters = String::new();
    let mut words = 0;
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let lower = w.to_lowercase();
        if STOP_WORDS.contains(&lower.as_str()) {
            continue;
        }
        words += 1;
        letters.push_str(initial(&lower));
    }
    (words >= 2 && (2..=8).contains(&letters.chars().count())).then_some(letters)
}

/// What a word gives an [`initialism`]: a number whole, else its first character.
pub fn initial(word: &str) -> &str {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        word
    } else {
        word.chars().next().map_or("", |c| &word[..c.len_utf8()])
    }
}

/// Whether a query token reads as an abbreviation: 2–8 letters and digits
/// with at least two capitals, or capitals and digits (`AML`, `cDC2`, `NK`,
/// `HSC`, `T2DM`).
pub fn looks_like_abbreviation(token: &str) -> bool {
    let n = token.chars().count();
    if !(2..=8).contains(&n) || !token.chars().all(char::is_alphanumeric) {
        return false;
    }
    let upper = token.chars().filter(|c| c.is_uppercase()).count();
    let digits = token.chars().filter(|c| c.is_ascii_digit()).count();
    upper >= 2 || (upper >= 1 && digits >= 1 && n <= 5)
}

fn spell_greek(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let name = match c {
            'α' | 'Α' => "alpha",
            'β' | 'Β' => "beta",
            'γ' | 'Γ' => "gamma",
            'δ' | 'Δ' => "delta",
            'ε' => "epsilon",
            'ζ' => "zeta",
            'η' => "eta",
            'θ' => "theta",
            'ι' => "iota",
            'κ' => "kappa",
            'λ' => "lambda",
            'μ' => "mu",
            'ν' => "nu",
            'ξ' => "xi",
            'π' => "pi",
            'ρ' => "rho",
            'σ' => "sigma",
            'τ' => "tau",
            'φ' => "phi",
            'χ' => "chi",
            'ψ' => "psi",
            'ω' => "omega",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push(' ');
        out.push_str(name);
        out.push(' ');
    }
    out
}

/// Lowercases, splits marker suffixes and stems one alphanumeric word into `out`.
fn flush(word: &mut String, out: &mut Vec<String>) {
    if word.is_empty() {
        return;
    }
    let lower = word.to_lowercase();
    word.clear();
    if let Some((base, level)) = marker_suffix(&lower) {
        out.push(base.to_string());
        out.push(level.to_string());
        return;
    }
    match lower.as_str() {
        "gd" => out.extend(["gamma".to_string(), "delta".to_string()]),
        "ab" => out.extend(["alpha".to_string(), "beta".to_string()]),
        "pos" | "positive" => out.push("positive".into()),
        "neg" | "negative" => out.push("negative".into()),
        "hi" | "high" | "bright" => out.push("high".into()),
        "lo" | "low" | "dim" => out.push("low".into()),
        w if STOP_WORDS.contains(&w) => {}
        w => out.push(american(&stem(w)).into_owned()),
    }
}

/// `cd56bright` → (`cd56`, `high`): a marker (letters then digits, maybe one
/// more letter) followed by an expression level.
fn marker_suffix(word: &str) -> Option<(&str, &'static str)> {
    const LEVELS: [(&str, &str); 8] = [
        ("bright", "high"),
        ("high", "high"),
        ("hi", "high"),
        ("dim", "low"),
        ("low", "low"),
        ("lo", "low"),
        ("neg", "negative"),
        ("pos", "positive"),
    ];
    for (suffix, level) in LEVELS {
        let Some(base) = word.strip_suffix(suffix) else {
            continue;
        };
        let letters = base.bytes().take_while(u8::is_ascii_lowercase).count();
        let rest = &base.as_bytes()[letters..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let tail = rest.len() - digits;
        if (1..=5).contains(&letters) && digits >= 1 && tail <= 1 {
            return Some((base, level));
        }
    }
    None
}

/// British spellings to American ones, by rule.
fn american(word: &str) -> Cow<'_, str> {
    let mut w = Cow::Borrowed(word);
    if w.len() > 5 && w.ends_with("our") {
        let stem = &w[..w.len() - 3];
        w = Cow::Owned(format!("{stem}or"));
    }
    for (from, to) in [
        ("oesophag", "esophag"),
        ("haem", "hem"),
        ("anaem", "anem"),
        ("aemia", "emia"),
        ("oedem", "edem"),
        ("foet", "fet"),
        ("paed", "ped"),
        ("caec", "cec"),
    ] {
        if let Some(i) = w.find(from) {
            let s = format!("{}{to}{}", &w[..i], &w[i + from.len()..]);
            w = Cow::Owned(s);
        }
    }
    w
}

/// A light plural stemmer: `cells` → `cell`, `bodies` → `body`,
/// `vertebrae` → `vertebra`, `carcinomas` → `carcinoma`; words ending in
/// `ss`, `us`, `is` or shorter than four letters are kept. The index and the
/// query are stemmed alike, so a false singular (`pancreas` → `pancrea`)
/// costs nothing.
fn stem(word: &str) -> String {
    let n = word.len();
    if n < 4 || !word.is_ascii() {
        return word.to_string();
    }
    if let Some(s) = word.strip_suffix("ies") {
        if n >= 5 {
            return format!("{s}y");
        }
    }
    if let Some(s) = word.strip_suffix("ae") {
        if n >= 6 {
            return format!("{s}a");
        }
    }
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_string();
    }
    if let Some(s) = word.strip_suffix('s') {
        if !s.ends_with(|c: char| c.is_ascii_digit()) {
            return s.to_string();
        }
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        tokens(text)
    }

    #[test]
    fn markers_read_alike() {
        assert_eq!(t("CD8+ T cells"), t("CD8-positive T cell"));
        assert_eq!(t("CD8+ T cells"), ["cd8", "positive", "t", "cell"]);
        assert_eq!(t("CD16- monocyte"), ["cd16", "negative", "monocyte"]);
        assert_eq!(t("CD16− monocyte"), t("CD16-negative monocyte"));
        assert_eq!(t("CD56bright NK"), t("CD56-bright NK"));
        assert_eq!(t("CD56dim"), ["cd56", "low"]);
        assert_eq!(
            t("CD4+CD25+ cells"),
            ["cd4", "positive", "cd25", "positive", "cell"]
        );
        assert_eq!(t("CD8hi"), ["cd8", "high"]);
        // A bare CD marker is positive; `CD4-CD8-` is two negatives.
        assert_eq!(t("CD8 T cells"), t("CD8-positive T cell"));
        assert_eq!(t("CD4 T"), ["cd4", "positive", "t"]);
        assert_eq!(
            t("CD4-CD8- T cell"),
            ["cd4", "negative", "cd8", "negative", "t", "cell"]
        );
        assert_eq!(t("CD4-CD8-"), t("CD4-negative, CD8-negative"));
        assert_eq!(t("CD8alpha"), ["cd8alpha"]);
        // Only a marker loses a level suffix.
        assert_eq!(t("thigh"), ["thigh"]);
        assert_eq!(t("Lgr5+"), ["lgr5", "positive"]);
    }

    #[test]
    fn greek_order_and_plurals() {
        assert_eq!(t("γδ T cell"), t("gamma-delta T cell"));
        assert_eq!(t("gd T cells"), t("gamma-delta T cell"));
        assert_eq!(t("macrophage of appendix"), ["macrophage", "appendix"]);
        assert_eq!(t("renal cell carcinomas"), t("renal cell carcinoma"));
        assert_eq!(t("capillaries"), ["capillary"]);
        assert_eq!(t("vertebrae"), ["vertebra"]);
        assert_eq!(t("abscess"), ["abscess"]);
        assert_eq!(t("fibroblasts"), t("fibroblast"));
        assert_eq!(t("tumours"), t("tumor"));
        assert_eq!(t("haematopoietic"), t("hematopoietic"));
        assert_eq!(t("oesophagus"), t("esophagus"));
        assert!(t(" - , ").is_empty());
    }

    #[test]
    fn label_style_spells_bare_markers_as_positive() {
        assert_eq!(label_style("CD8 T").as_deref(), Some("CD8-positive T"));
        assert_eq!(
            label_style("CD4 T cells").as_deref(),
            Some("CD4-positive T cells")
        );
        assert_eq!(
            label_style("CD4 positive T cells").as_deref(),
            None,
            "already spelled"
        );
        assert_eq!(label_style("CD8alpha T").as_deref(), None);
        assert_eq!(label_style("naive T cell").as_deref(), None);
    }

    #[test]
    fn label_style_spells_markers_out() {
        assert_eq!(
            label_style("CD8+ T cells").as_deref(),
            Some("CD8-positive T cells")
        );
        assert_eq!(
            label_style("CD14+ Mono").as_deref(),
            Some("CD14-positive Mono")
        );
        assert_eq!(
            label_style("CD4+CD25+ T").as_deref(),
            Some("CD4-positive CD25-positive T")
        );
        assert_eq!(
            label_style("CD16- monocyte").as_deref(),
            Some("CD16-negative monocyte")
        );
        assert_eq!(
            label_style("CD56bright NK").as_deref(),
            Some("CD56-bright NK")
        );
        assert_eq!(label_style("CD8hi").as_deref(), Some("CD8-high"));
        assert_eq!(label_style("T-cell"), None);
        assert_eq!(label_style("colon"), None);
    }

    #[test]
    fn initialisms_of_labels() {
        assert_eq!(
            initialism("non-small cell lung carcinoma").as_deref(),
            Some("nsclc")
        );
        assert_eq!(
            initialism("peripheral blood mononuclear cell").as_deref(),
            Some("pbmc")
        );
        assert_eq!(
            initialism("type 2 diabetes mellitus").as_deref(),
            Some("t2dm")
        );
        assert_eq!(initialism("acute myeloid leukemia").as_deref(), Some("aml"));
        assert_eq!(initialism("neuron"), None);
        let heads = ["cell".to_string()];
        assert_eq!(
            initialisms("mucosal-associated invariant T cell", &heads),
            ["maitc", "mait"].map(String::from)
        );
        assert!(looks_like_abbreviation("AML"));
        assert!(looks_like_abbreviation("cDC2"));
        assert!(looks_like_abbreviation("NK"));
        assert!(!looks_like_abbreviation("Mono"));
        assert!(!looks_like_abbreviation("cells"));
    }
}

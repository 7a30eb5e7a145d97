//! The sentiment detector measured on the labelled set `testdata/sentiment.tsv` (204 messages
//! written for Docket, half Chinese, half English, hard negatives included). The test prints
//! precision and recall per language and overall, and fails below the floors.
//!
//! The floors: a false "upset" flag makes a calm ticket jump the queue (it costs the other
//! customers waiting time), a miss leaves an angry customer at normal priority until a person
//! reads the ticket, which is what happens today without the rule. So precision matters more:
//! the floor is 0.90 for precision and 0.85 for recall, overall and per language. The measured
//! figures (docs/routing.md) sit above them; the margin lets a lexicon change that helps one
//! language cost the other a message or two, and no more.

use routing::sentiment;

const PRECISION_MIN: f64 = 0.90;
const RECALL_MIN: f64 = 0.85;

#[derive(Default, Debug)]
struct Counts {
    true_positive: u32,
    false_positive: u32,
    false_negative: u32,
    true_negative: u32,
}

impl Counts {
    fn precision(&self) -> f64 {
        f64::from(self.true_positive) / f64::from(self.true_positive + self.false_positive)
    }
    fn recall(&self) -> f64 {
        f64::from(self.true_positive) / f64::from(self.true_positive + self.false_negative)
    }
    fn add(&mut self, label: bool, predicted: bool) {
        match (label, predicted) {
            (true, true) => self.true_positive += 1,
            (false, true) => self.false_positive += 1,
            (true, false) => self.false_negative += 1,
            (false, false) => self.true_negative += 1,
        }
    }
}

#[test]
fn precision_and_recall_on_the_labelled_set() {
    let text = include_str!("../../testdata/sentiment.tsv");
    let mut by_language: std::collections::BTreeMap<&str, Counts> = Default::default();
    let mut all = Counts::default();
    let mut mistakes = Vec::new();
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let mut fields = line.splitn(3, '\t');
        let (Some(label), Some(language), Some(message)) =
            (fields.next(), fields.next(), fields.next())
        else {
            panic!("malformed line: {line}");
        };
        let label = match label {
            "1" => true,
            "0" => false,
            other => panic!("label {other:?} in: {line}"),
        };
        let predicted = sentiment::detect(message).is_some();
        by_language
            .entry(language)
            .or_default()
            .add(label, predicted);
        all.add(label, predicted);
        if label != predicted {
            let score = sentiment::score(message);
            mistakes.push(format!(
                "{} {language} score {} {:?}: {message}",
                if label { "missed" } else { "false alarm" },
                score.score,
                score.evidence
            ));
        }
    }
    let total = all.true_positive + all.false_positive + all.false_negative + all.true_negative;
    assert!(
        total >= 200,
        "the set has {total} messages; the issue asks for at least 200"
    );
    let mut report = vec![];
    for (language, counts) in by_language
        .iter()
        .chain([("all", &all)].iter().map(|(l, c)| (l, *c)))
    {
        report.push(format!(
            "{language}: precision {:.3} recall {:.3} ({counts:?})",
            counts.precision(),
            counts.recall()
        ));
    }
    let report = format!("{}\n{}", report.join("\n"), mistakes.join("\n"));
    // Shown with --nocapture; the figures in docs/routing.md come from here.
    std::io::Write::write_all(&mut std::io::stderr(), format!("{report}\n").as_bytes()).unwrap();
    for (language, counts) in by_language
        .iter()
        .chain([("all", &all)].iter().map(|(l, c)| (l, *c)))
    {
        assert!(
            counts.precision() >= PRECISION_MIN && counts.recall() >= RECALL_MIN,
            "{language} below the floors (precision {PRECISION_MIN}, recall {RECALL_MIN}):\n{report}"
        );
    }
}

//! Which language a ticket is written in, without a model: the script decides most languages
//! outright (Han without kana is Chinese, kana is Japanese, Hangul is Korean, and so on), and
//! Latin-script text is told apart by counting each language's commonest words. Good enough to
//! route a ticket to someone who reads it; not a linguistic tool.

/// Characters of a text looked at: the subject and the start of the description decide.
pub const DETECT_CHARS_MAX: usize = 2_000;

/// Stopwords of the Latin-script languages, as whole lowercase words. Words that two of these
/// languages share heavily (`a`, `e`, `o`, `de`) are left out: they would vote for no one.
const LATIN_STOPWORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "and", "is", "are", "was", "my", "i", "you", "it", "to", "of", "not", "this",
            "that", "have", "with", "for", "please", "can", "your", "we", "order", "what", "when",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "los", "las", "que", "y", "es", "mi", "por", "para", "con", "una", "pero",
            "gracias", "pedido", "hola", "está", "cuenta", "tengo", "como",
        ],
    ),
    (
        "fr",
        &[
            "le", "les", "et", "est", "je", "vous", "mon", "pas", "une", "des", "du", "pour",
            "avec", "merci", "bonjour", "commande", "mais", "nous", "sur", "ne",
        ],
    ),
    (
        "de",
        &[
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ich",
            "nicht",
            "mit",
            "ein",
            "eine",
            "mein",
            "meine",
            "bitte",
            "danke",
            "bestellung",
            "sie",
            "auf",
            "für",
            "zu",
            "habe",
        ],
    ),
    (
        "pt",
        &[
            "não", "meu", "minha", "obrigado", "obrigada", "pedido", "com", "uma", "para", "olá",
            "você", "conta", "está", "os", "as", "mas", "foi", "isso", "tenho",
        ],
    ),
    (
        "it",
        &[
            "il", "che", "non", "mio", "mia", "sono", "per", "con", "una", "grazie", "ordine",
            "ciao", "della", "questo", "ho", "gli", "ma", "è",
        ],
    ),
    (
        "nl",
        &[
            "het",
            "een",
            "ik",
            "niet",
            "mijn",
            "en",
            "van",
            "dat",
            "is",
            "bestelling",
            "bedankt",
            "alstublieft",
            "met",
            "voor",
            "wij",
            "zijn",
        ],
    ),
];

/// The text's language as an ISO 639-1 code, or `None` when nothing decides it (no letters,
/// or Latin words of no known language).
pub fn detect(text: &str) -> Option<&'static str> {
    let mut han = 0u32;
    let mut kana = 0u32;
    let mut hangul = 0u32;
    let mut cyrillic = 0u32;
    let mut arabic = 0u32;
    let mut thai = 0u32;
    let mut devanagari = 0u32;
    let mut greek = 0u32;
    let mut hebrew = 0u32;
    let mut latin = 0u32;
    for c in text.chars().take(DETECT_CHARS_MAX) {
        match c as u32 {
            0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF => han += 1,
            0x3040..=0x30FF => kana += 1,
            0xAC00..=0xD7AF | 0x1100..=0x11FF => hangul += 1,
            0x0400..=0x04FF => cyrillic += 1,
            0x0600..=0x06FF => arabic += 1,
            0x0E00..=0x0E7F => thai += 1,
            0x0900..=0x097F => devanagari += 1,
            0x0370..=0x03FF => greek += 1,
            0x0590..=0x05FF => hebrew += 1,
            _ if c.is_ascii_alphabetic() || ('\u{C0}'..='\u{24F}').contains(&c) => latin += 1,
            _ => {}
        }
    }
    // Japanese writes Han too; any kana makes it Japanese.
    if kana > 0 && kana + han >= latin {
        return Some("ja");
    }
    let scripts = [
        (han, "zh"),
        (hangul, "ko"),
        (cyrillic, "ru"),
        (arabic, "ar"),
        (thai, "th"),
        (devanagari, "hi"),
        (greek, "el"),
        (hebrew, "he"),
    ];
    let (count, language) = scripts
        .iter()
        .copied()
        .max_by_key(|(count, _)| *count)
        .expect("scripts is not empty");
    // A Han character carries a word's worth of meaning: weigh it against Latin letters as
    // several, so a Chinese sentence with an English product name stays Chinese.
    let weighted = if language == "zh" { count * 4 } else { count };
    if count > 0 && weighted >= latin {
        return Some(language);
    }
    if latin == 0 {
        return None;
    }
    latin_language(text)
}

fn latin_language(text: &str) -> Option<&'static str> {
    let mut scores = [0u32; LATIN_STOPWORDS.len()];
    let words = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|word| !word.is_empty())
        .take(DETECT_CHARS_MAX / 2);
    for word in words {
        let word = word.to_lowercase();
        for (index, (_, stopwords)) in LATIN_STOPWORDS.iter().enumerate() {
            if stopwords.contains(&word.as_str()) {
                scores[index] += 1;
            }
        }
    }
    let (best, score) = scores
        .iter()
        .enumerate()
        .max_by_key(|(index, score)| (**score, usize::MAX - index))?;
    (*score > 0).then_some(LATIN_STOPWORDS[best].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_common_languages() {
        let cases = [
            ("系统崩溃了，无法登录，请尽快处理", Some("zh")),
            ("我的 iPhone 订单还没发货", Some("zh")),
            ("注文した商品がまだ届きません", Some("ja")),
            ("주문한 상품이 아직 도착하지 않았습니다", Some("ko")),
            ("Мой заказ не пришёл", Some("ru")),
            ("لم يصل طلبي بعد", Some("ar")),
            ("The payment failed and my order is stuck", Some("en")),
            (
                "Hola, mi pedido no ha llegado y necesito ayuda con la cuenta",
                Some("es"),
            ),
            ("Bonjour, je n'ai pas reçu ma commande, merci", Some("fr")),
            (
                "Hallo, ich habe meine Bestellung nicht erhalten, bitte helfen",
                Some("de"),
            ),
            ("Olá, não recebi o meu pedido, obrigado", Some("pt")),
            ("Ciao, non ho ricevuto il mio ordine, grazie", Some("it")),
            ("Hallo, ik heb mijn bestelling niet ontvangen", Some("nl")),
            ("12345 !!!", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(detect(text), expected, "{text}");
        }
    }
}

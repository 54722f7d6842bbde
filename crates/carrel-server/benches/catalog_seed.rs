//! Seeds a database with a deterministic synthetic catalog for the catalog
//! search benchmark (`bench/catalog.sh`), and reports how fast it went.
//!
//! Run with (release profile; `harness = false`, so no test framework):
//!
//! ```sh
//! CARREL_DATABASE_URL=sqlite:///tmp/catalog/carrel.db \
//! CARGO_TARGET_DIR=/work/bench-target nice -n 19 \
//!     cargo bench -p carrel-server --bench catalog_seed -- 100000
//! ```
//!
//! or build it once (`cargo bench ... --bench catalog_seed --no-run`) and run the
//! newest `<target>/release/deps/catalog_seed-*` executable directly, which is
//! what `bench/catalog.sh` does.
//!
//! Inputs:
//! * `CARREL_DATABASE_URL` (required): `sqlite://…` or `postgres://…`. The
//!   database is migrated first; it should be empty (barcodes are unique).
//! * the item count: the first numeric argument, else `CATALOG_ITEMS`, else 100,000.
//! * `CATALOG_CHUNK` (20,000): items per `bulk_create_items` call, i.e. per
//!   transaction. `CATALOG_SEED` (1): the PRNG seed.
//!
//! The store is opened exactly as the server opens it (`StoreOptions::default()`;
//! SQLite in WAL mode with `synchronous = NORMAL`), nothing is tuned for loading.
//!
//! What an item looks like (every random choice comes from a per-item xorshift
//! stream, so item `n` is the same whatever the chunk size):
//! * vocabulary: 5,000 synthetic lower-case words ("bavelo", "kitu", …; never an
//!   English stop word), drawn with a Zipf distribution (weight 1/rank).
//! * title: 1–5 vocabulary words; subtitle (40 %): 2–4 words; description (75 %):
//!   8–30 words. Publisher (90 %) from 500, language from 6.
//! * the common word "history": in the title of 6 % of items and in the
//!   description of another 5 %, independently, so ~10.7 % of items contain it.
//! * the rare word "zeppelin": in exactly 10 items (5 titles, 5 descriptions),
//!   spread over the whole range (for counts of at least 10).
//! * 1–3 authors from 20,000 "First Last" names; 1–4 subjects from 200.
//! * item type: book 60 %, ebook 15 %, audiobook 8 %, dvd 7 %, magazine 7 %,
//!   other 3 %. Year 1500–2025, skewed to recent years (2025 − ⌊526·u²⌋), so
//!   1900–1950 holds ~11 % of items. No ISBN. One available copy per item
//!   (barcodes `BENCH<n>`).
//!
//! Output: one "label: value" line each; `bench/catalog.sh` parses
//! `seed seconds:`, `items/s:`, `history items:` and `zeppelin items:`.

use std::sync::mpsc;
use std::time::Instant;

use carrel_server::catalog::search::is_stop_word;
use carrel_store::{ItemFields, Store, StoreOptions};
use time::OffsetDateTime;

const VOCABULARY: usize = 5_000;
const FIRST_NAMES: usize = 200;
const LAST_NAMES: usize = 100; // 200 x 100 = 20,000 author names
const SUBJECTS: usize = 200;
const PUBLISHERS: usize = 500;
const COMMON_WORD: &str = "history";
const RARE_WORD: &str = "zeppelin";
const RARE_ITEMS: u64 = 10;

/// xorshift64* — tiny, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// A stream for `(seed, stream)`, decorrelated with a splitmix64 step.
    fn new(seed: u64, stream: u64) -> Self {
        let mut z = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(stream)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Pronounceable pseudo-words: 2–3 consonant-vowel syllables, sometimes a final
/// consonant. Unique, never a stop word, never sharing a stem with the two
/// benchmark words.
fn pseudo_words(
    rng: &mut Rng,
    count: usize,
    taken: &mut std::collections::HashSet<String>,
) -> Vec<String> {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    const FINALS: &[u8] = b"nrslt";
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut word = String::new();
        for _ in 0..rng.range(2, 3) {
            word.push(CONSONANTS[rng.range(0, CONSONANTS.len() - 1)] as char);
            word.push(VOWELS[rng.range(0, VOWELS.len() - 1)] as char);
        }
        if rng.chance(0.3) {
            word.push(FINALS[rng.range(0, FINALS.len() - 1)] as char);
        }
        // A stop word would be dropped from every query by the server.
        if is_stop_word(&word)
            || word.starts_with("histor")
            || word.starts_with("zeppel")
            || !taken.insert(word.clone())
        {
            continue;
        }
        out.push(word);
    }
    out
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The fixed pools every item draws from.
#[derive(Debug)]
struct Pools {
    words: Vec<String>,
    /// Cumulative Zipf weights of `words` (rank r has weight 1/(r+1)).
    zipf_cdf: Vec<f64>,
    first_names: Vec<String>,
    last_names: Vec<String>,
    subjects: Vec<String>,
    publishers: Vec<String>,
}

impl Pools {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, u64::MAX);
        let mut taken = std::collections::HashSet::new();
        let words = pseudo_words(&mut rng, VOCABULARY, &mut taken);
        let mut total = 0.0;
        let zipf_cdf = (0..VOCABULARY)
            .map(|r| {
                total += 1.0 / (r + 1) as f64;
                total
            })
            .collect();
        let first_names = pseudo_words(&mut rng, FIRST_NAMES, &mut taken)
            .iter()
            .map(|w| capitalize(w))
            .collect();
        let last_names = pseudo_words(&mut rng, LAST_NAMES, &mut taken)
            .iter()
            .map(|w| {
                format!(
                    "{}{}",
                    capitalize(w),
                    ["", "son", "er", "ski", "ley"][w.len() % 5]
                )
            })
            .collect();
        const KINDS: [&str; 10] = [
            "studies",
            "science",
            "fiction",
            "poetry",
            "law",
            "travel",
            "music",
            "biography",
            "philosophy",
            "medicine",
        ];
        let subjects = pseudo_words(&mut rng, SUBJECTS, &mut taken)
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{} {}", capitalize(w), KINDS[i % KINDS.len()]))
            .collect();
        const HOUSES: [&str; 4] = ["Press", "Books", "& Sons", "Publishing"];
        let publishers = pseudo_words(&mut rng, PUBLISHERS, &mut taken)
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{} {}", capitalize(w), HOUSES[i % HOUSES.len()]))
            .collect();
        Pools {
            words,
            zipf_cdf,
            first_names,
            last_names,
            subjects,
            publishers,
        }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let total = self.zipf_cdf[self.zipf_cdf.len() - 1];
        let target = rng.unit() * total;
        let rank = self
            .zipf_cdf
            .partition_point(|&c| c <= target)
            .min(self.words.len() - 1);
        &self.words[rank]
    }

    /// `lo..=hi` Zipf words separated by spaces, each capitalised when `title`.
    fn phrase(&self, rng: &mut Rng, lo: usize, hi: usize, title: bool) -> String {
        let n = rng.range(lo, hi);
        let mut out = String::new();
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            let w = self.word(rng);
            if title {
                out.push_str(&capitalize(w))
            } else {
                out.push_str(w)
            }
        }
        out
    }
}

/// Inserts `word` (capitalised when `title`) at a random word boundary of `text`.
fn insert_word(rng: &mut Rng, text: &mut String, word: &str, title: bool) {
    let word = if title {
        capitalize(word)
    } else {
        word.to_owned()
    };
    let spaces: Vec<usize> = text.match_indices(' ').map(|(i, _)| i).collect();
    let at = rng.range(0, spaces.len());
    if at == spaces.len() {
        text.push(' ');
        text.push_str(&word);
    } else if at == 0 {
        text.insert_str(0, &format!("{word} "));
    } else {
        text.insert_str(spaces[at - 1] + 1, &format!("{word} "));
    }
}

/// What one item contains of the two benchmark words.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    common: u64,
    rare: u64,
}

fn make_item(pools: &Pools, seed: u64, n: u64, total: u64, counts: &mut Counts) -> ItemFields {
    let mut rng = Rng::new(seed, n);
    let mut title = pools.phrase(&mut rng, 1, 5, true);
    let subtitle = rng.chance(0.4).then(|| pools.phrase(&mut rng, 2, 4, false));
    let mut description = rng
        .chance(0.75)
        .then(|| pools.phrase(&mut rng, 8, 30, false));
    let common_title = rng.chance(0.06);
    let common_description = rng.chance(0.05);
    if common_title {
        insert_word(&mut rng, &mut title, COMMON_WORD, true);
    }
    if common_description {
        let text = description.get_or_insert_with(String::new);
        if text.is_empty() {
            text.push_str(COMMON_WORD);
        } else {
            insert_word(&mut rng, text, COMMON_WORD, false);
        }
    }
    if common_title || common_description {
        counts.common += 1;
    }
    // RARE_ITEMS items spread evenly: n = stride/2, stride*3/2, ...
    let stride = (total / RARE_ITEMS).max(1);
    if total >= RARE_ITEMS && n % stride == stride / 2 && n / stride < RARE_ITEMS {
        if (n / stride).is_multiple_of(2) {
            insert_word(&mut rng, &mut title, RARE_WORD, true);
        } else {
            let text = description.get_or_insert_with(String::new);
            if text.is_empty() {
                text.push_str(RARE_WORD);
            } else {
                insert_word(&mut rng, text, RARE_WORD, false);
            }
        }
        counts.rare += 1;
    }
    let authors = (0..rng.range(1, 3))
        .map(|_| {
            format!(
                "{} {}",
                pools.first_names[rng.range(0, FIRST_NAMES - 1)],
                pools.last_names[rng.range(0, LAST_NAMES - 1)]
            )
        })
        .collect();
    let subjects = (0..rng.range(1, 4))
        .map(|_| pools.subjects[rng.range(0, SUBJECTS - 1)].clone())
        .collect();
    let item_type = match rng.range(0, 99) {
        0..=59 => "book",
        60..=74 => "ebook",
        75..=82 => "audiobook",
        83..=89 => "dvd",
        90..=96 => "magazine",
        _ => "other",
    };
    let u = rng.unit();
    let year = 2025 - (526.0 * u * u) as i32;
    let publisher = rng
        .chance(0.9)
        .then(|| pools.publishers[rng.range(0, PUBLISHERS - 1)].clone());
    let language = [
        "en", "en", "en", "en", "en", "en", "en", "fr", "de", "es", "it", "la",
    ][rng.range(0, 11)];
    ItemFields {
        title,
        subtitle,
        authors,
        isbn: None,
        item_type: item_type.to_owned(),
        publisher,
        publication_year: Some(year),
        language: Some(language.to_owned()),
        subjects,
        description,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("CARREL_DATABASE_URL")
        .map_err(|_| "set CARREL_DATABASE_URL to a sqlite:// or postgres:// URL")?;
    // `cargo bench` passes `--bench`; the count is the first numeric argument.
    let items = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse::<u64>().ok())
        .or_else(|| env_u64("CATALOG_ITEMS"))
        .unwrap_or(100_000);
    let chunk = env_u64("CATALOG_CHUNK").unwrap_or(20_000).max(1);
    let seed = env_u64("CATALOG_SEED").unwrap_or(1);
    if items == 0 {
        return Err("the item count must be at least 1".into());
    }

    let started = Instant::now();
    let store = Store::connect(&url, &StoreOptions::default()).await?;
    store.migrate().await?;
    let migrated = started.elapsed();
    println!("backend:          {}", store.backend().name());
    println!("items:            {items} (chunks of {chunk}, one transaction each, seed {seed})");
    println!("connect+migrate:  {:.3} s", migrated.as_secs_f64());

    // A generator thread synthesises the next chunk while the store inserts this one.
    let seed_start = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<ItemFields>)>(1);
    let generator = std::thread::spawn(move || {
        let pools = Pools::new(seed);
        let mut counts = Counts::default();
        let mut synth = std::time::Duration::ZERO;
        let mut start = 0;
        while start < items {
            let t = Instant::now();
            let end = (start + chunk).min(items);
            let batch: Vec<ItemFields> = (start..end)
                .map(|n| make_item(&pools, seed, n, items, &mut counts))
                .collect();
            synth += t.elapsed();
            if tx.send((start, batch)).is_err() {
                break;
            }
            start = end;
        }
        (counts, synth)
    });

    let now = OffsetDateTime::now_utc();
    let mut inserted = 0u64;
    let mut insert_time = std::time::Duration::ZERO;
    while let Ok((start, batch)) = rx.recv() {
        let t = Instant::now();
        store
            .bulk_create_items(&batch, 1, "BENCH", start, now)
            .await?;
        insert_time += t.elapsed();
        inserted += batch.len() as u64;
        eprint!("\rseeded {inserted}/{items}");
    }
    eprintln!();
    let (counts, synth) = generator
        .join()
        .map_err(|_| "the generator thread panicked")?;
    let seconds = seed_start.elapsed().as_secs_f64();
    if inserted != items {
        return Err(format!("inserted {inserted} items, expected {items}").into());
    }
    store.close().await;

    println!("seed seconds:     {seconds:.3}");
    println!("items/s:          {:.0}", items as f64 / seconds);
    println!(
        "  of which:       {:.3} s in bulk_create_items, {:.3} s synthesising (overlapped)",
        insert_time.as_secs_f64(),
        synth.as_secs_f64()
    );
    println!(
        "history items:    {} ({:.2} %)",
        counts.common,
        100.0 * counts.common as f64 / items as f64
    );
    println!("zeppelin items:   {}", counts.rare);
    println!("total seconds:    {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}

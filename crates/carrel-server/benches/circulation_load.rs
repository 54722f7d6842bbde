//! The circulation benchmark (`bench/circulation.sh`): seeds patrons and
//! copies, then drives checkout + return cycles against a running server.
//!
//! ```text
//! circulation_load seed PATRON_FILE          # CARREL_DATABASE_URL must be set
//! circulation_load load BASE_URL TOKEN PATRON_FILE
//! circulation_load sip2 HOST:PORT LOGIN PASSWORD PATRON_FILE
//! ```
//!
//! `seed` migrates the database and loads `BENCH_PATRONS` (10,000) verified
//! patrons (patron `n` has the card `BENCH-<n>`) and `BENCH_COPIES` (100,000)
//! available copies (5 per item, barcodes `CIRC<n>`) directly through the
//! store, and writes the patron ids, one per line, to `PATRON_FILE`. With
//! `BENCH_PIN` set, every patron also gets that PIN (one Argon2id hash with the
//! server's default parameters, stored for all). With `BENCH_MATRIX_ROWS` set
//! (e.g. 200), the circulation rule matrix is filled to that many rows: the
//! seeded default and type rows, then every branch / category / type
//! combination of the main branch (where the copies live) and of as many extra
//! branches as it takes, all with the default policy, so every checkout
//! resolves against a large matrix and matches a branch+category+type row.
//!
//! `load` runs `BENCH_CONCURRENCY` (8) workers for `BENCH_WARMUP` (2) seconds,
//! discarded, then `BENCH_DURATION` (10) seconds, measured. A cycle is
//! `POST /api/v1/loans` (a copy, a random patron) followed by
//! `POST /api/v1/loans/return` of the same copy, as the librarian whose access
//! `TOKEN` is given. Worker `w` walks its own slice of the copies, so workers
//! never contend for a copy. It prints `label: value` lines: cycles/s, cycle
//! p50/p99/max (ms), checkout and return p50/p99 (ms), and errors (any non-2xx
//! response counts as one and is printed once per status).
//!
//! `sip2` is the same load over SIP2 (`bench/sip2.sh`): `BENCH_CONCURRENCY`
//! terminals, each one TCP connection logged in (93) as `LOGIN`, loop checkout
//! (11, a random patron's card with `BENCH_PIN`, default 2468) then checkin
//! (09) of the same copy; a patron keeps the terminal for
//! `BENCH_SIP2_SESSION` (1) checkouts, as a patron checking out several items
//! at a kiosk would. With `BENCH_SIP2_SIGN_IN=1` each new patron is first
//! signed in with a patron information request (63 with the PIN), as kiosks
//! do, so the PIN is hashed there and the checkouts that follow find it
//! remembered; the sign-in time stays inside the measured pairs/s. It prints
//! pairs/s, pair p50/p99, 11 and 09 (and 63) p50/p99/max (ms) and errors (any
//! answer other than `121…`/`101…`, or a 64 without `CQY`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use carrel_core::rules::{Rule, Specificity};
use carrel_store::{ItemFields, NewUser, Store, StoreOptions};
use time::OffsetDateTime;
use uuid::Uuid;

const COPIES_PER_ITEM: u32 = 5;

/// The card number of seeded patron `n`.
fn card_of(n: u64) -> String {
    format!("BENCH-{n}")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Runtime::new()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed", file] => runtime.block_on(seed(file)),
        ["load", url, token, file] => runtime.block_on(load(url, token, file)),
        ["sip2", address, login, password, file] => {
            runtime.block_on(sip2_load(address, login, password, file))
        }
        _ => Err(
            "usage: circulation_load seed PATRON_FILE | load BASE_URL TOKEN PATRON_FILE \
                  | sip2 HOST:PORT LOGIN PASSWORD PATRON_FILE"
                .into(),
        ),
    }
}

async fn seed(patron_file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("CARREL_DATABASE_URL")?;
    let patrons = env_number("BENCH_PATRONS", 10_000);
    let copies = env_number("BENCH_COPIES", 100_000);
    let store = Store::connect(&url, &StoreOptions::default()).await?;
    store.migrate().await?;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let started = Instant::now();

    let mut ids = Vec::with_capacity(patrons as usize);
    for chunk_start in (0..patrons).step_by(1_000) {
        let chunk: Vec<NewUser> = (chunk_start..patrons.min(chunk_start + 1_000))
            .map(|n| NewUser {
                id: Uuid::now_v7(),
                email: format!("patron{n}@bench.example"),
                email_key: format!("patron{n}@bench.example"),
                username: format!("patron{n}"),
                username_key: format!("patron{n}"),
                full_name: Some(format!("Patron {n}")),
                role: carrel_core::roles::Role::Patron,
                password_hash: None,
                email_verified: true,
                card_number: Some(card_of(n)),
                category: None,
                now,
            })
            .collect();
        store.import_users(&chunk).await?;
        ids.extend(chunk.iter().map(|u| u.id));
    }
    if let Ok(pin) = std::env::var("BENCH_PIN") {
        // One hash for everyone: hashing 10,000 PINs would take minutes.
        let hasher = carrel_server::passwords::PasswordHasher::new(
            carrel_server::config::Argon2Config::DEFAULT,
            1,
        )?;
        let hash = hasher.hash(secrecy::SecretString::from(pin)).await?;
        let mut writes = futures::stream::iter(
            ids.iter()
                .map(|id| store.set_pin(*id, &hash, now, |_: &()| Vec::new())),
        )
        .buffer_unordered(8);
        while let Some(done) = writes.next().await {
            done?;
        }
    }
    let patrons_done = started.elapsed();

    let items = copies.div_ceil(u64::from(COPIES_PER_ITEM));
    for chunk_start in (0..items).step_by(5_000) {
        let chunk: Vec<ItemFields> = (chunk_start..items.min(chunk_start + 5_000))
            .map(|n| ItemFields {
                title: format!("Circulation bench item {n}"),
                subtitle: None,
                authors: vec![format!("Author {}", n % 997)],
                isbn: None,
                item_type: ["book", "dvd", "audiobook", "magazine", "other"][(n % 5) as usize]
                    .into(),
                publisher: None,
                publication_year: Some(1900 + (n % 125) as i32),
                language: Some("en".into()),
                subjects: vec![],
                description: None,
            })
            .collect();
        store
            .bulk_create_items(
                &chunk,
                COPIES_PER_ITEM,
                "CIRC",
                chunk_start * u64::from(COPIES_PER_ITEM),
                now,
            )
            .await?;
    }
    let matrix_rows = env_number("BENCH_MATRIX_ROWS", 0) as usize;
    if matrix_rows > 0 {
        seed_matrix(&store, matrix_rows, now).await?;
        println!("seed matrix rows: {matrix_rows}");
    }
    std::fs::write(
        patron_file,
        ids.iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    println!("seed patrons: {patrons}");
    println!("seed copies: {}", items * u64::from(COPIES_PER_ITEM));
    println!("seed patrons seconds: {:.1}", patrons_done.as_secs_f64());
    println!("seed seconds: {:.1}", started.elapsed().as_secs_f64());
    store.close().await;
    Ok(())
}

/// Fills the rule matrix to `rows` rows (see the module docs).
async fn seed_matrix(
    store: &Store,
    rows: usize,
    now: OffsetDateTime,
) -> Result<(), Box<dyn std::error::Error>> {
    const CATEGORIES: [&str; 3] = ["adult", "child", "staff"];
    const TYPES: [&str; 6] = ["book", "dvd", "audiobook", "magazine", "ebook", "other"];
    let mut rules = store.list_rules().await?;
    let policy = rules
        .iter()
        .find(|r| r.specificity() == Specificity::Default)
        .ok_or("the matrix has no default row")?
        .policy;
    let categories = std::iter::once(None).chain(CATEGORIES.map(Some));
    let keys: Vec<(Option<&str>, Option<&str>)> = categories
        .flat_map(|c| {
            std::iter::once(None)
                .chain(TYPES.map(Some))
                .map(move |t| (c, t))
        })
        .collect();
    let mut branch = carrel_store::MAIN_BRANCH_ID;
    let mut extra = 0;
    'fill: loop {
        for &(category, item_type) in &keys {
            if rules.len() >= rows {
                break 'fill;
            }
            rules.push(Rule {
                branch_id: Some(branch),
                patron_category: category.map(str::to_owned),
                item_type: item_type.map(str::to_owned),
                policy,
                max_loans_of_type: None,
                holds_allowed: true,
            });
        }
        extra += 1;
        let created = store
            .create_branch(
                &carrel_store::NewBranch {
                    code: format!("BENCH{extra}"),
                    name: format!("Bench branch {extra}"),
                    timezone: None,
                    address: None,
                },
                now,
                |_: &carrel_store::Branch| Vec::new(),
            )
            .await?;
        branch = created.id;
    }
    store
        .replace_rules(&rules, None, now, |_: &Vec<Rule>| Vec::new())
        .await?;
    Ok(())
}

#[derive(Default)]
struct Samples {
    cycles: Vec<Duration>,
    checkouts: Vec<Duration>,
    returns: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

async fn load(
    base: &str,
    token: &str,
    patron_file: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let patrons: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(patron_file)?
            .lines()
            .map(str::to_owned)
            .collect(),
    );
    let copies = env_number("BENCH_COPIES", 100_000);
    let workers = env_number("BENCH_CONCURRENCY", 8);
    let warmup = Duration::from_secs(env_number("BENCH_WARMUP", 2));
    let duration = Duration::from_secs(env_number("BENCH_DURATION", 10));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers as usize)
        .build()?;
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + duration;

    let mut tasks = Vec::new();
    for worker in 0..workers {
        let client = client.clone();
        let patrons = patrons.clone();
        let loans = format!("{base}/api/v1/loans");
        let returns = format!("{base}/api/v1/loans/return");
        let auth = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut copy = worker;
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (worker + 1);
            while Instant::now() < stop {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let patron = &patrons[(rng % patrons.len() as u64) as usize];
                let barcode = format!("CIRC{copy}");
                copy = (copy + workers) % copies;
                let began = Instant::now();
                let out = client
                    .post(&loans)
                    .header("authorization", &auth)
                    .json(&serde_json::json!({"copy_barcode": barcode, "user_id": patron}))
                    .send()
                    .await;
                let checked_out = Instant::now();
                let back = client
                    .post(&returns)
                    .header("authorization", &auth)
                    .json(&serde_json::json!({"copy_barcode": barcode}))
                    .send()
                    .await;
                let done = Instant::now();
                if began < measure_from || done > stop {
                    continue;
                }
                let mut ok = true;
                for response in [out, back] {
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => {
                            ok = false;
                            let status = r.status().as_u16();
                            let body = r.text().await.unwrap_or_default();
                            *samples
                                .errors
                                .entry(format!("{status} {body}"))
                                .or_default() += 1;
                        }
                        Err(e) => {
                            ok = false;
                            *samples.errors.entry(e.to_string()).or_default() += 1;
                        }
                    }
                }
                if ok {
                    samples.cycles.push(done - began);
                    samples.checkouts.push(checked_out - began);
                    samples.returns.push(done - checked_out);
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        let s = task.await?;
        all.cycles.extend(s.cycles);
        all.checkouts.extend(s.checkouts);
        all.returns.extend(s.returns);
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &mut Vec<Duration>, p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_unstable();
        let index = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        ms(v[index])
    };
    println!("concurrency: {workers}");
    println!("measured seconds: {}", duration.as_secs());
    println!("cycles: {}", all.cycles.len());
    println!(
        "cycles/s: {:.1}",
        all.cycles.len() as f64 / duration.as_secs_f64()
    );
    println!("cycle p50 ms: {:.2}", pct(&mut all.cycles, 0.50));
    println!("cycle p99 ms: {:.2}", pct(&mut all.cycles, 0.99));
    println!("cycle max ms: {:.2}", pct(&mut all.cycles, 1.0));
    println!("checkout p50 ms: {:.2}", pct(&mut all.checkouts, 0.50));
    println!("checkout p99 ms: {:.2}", pct(&mut all.checkouts, 0.99));
    println!("return p50 ms: {:.2}", pct(&mut all.returns, 0.50));
    println!("return p99 ms: {:.2}", pct(&mut all.returns, 0.99));
    let errors: u64 = all.errors.values().sum();
    println!("errors: {errors}");
    for (what, count) in &all.errors {
        let what: String = what.chars().take(200).collect();
        println!("error x{count}: {what}");
    }
    Ok(())
}

#[derive(Default)]
struct Sip2Samples {
    pairs: Vec<Duration>,
    checkouts: Vec<Duration>,
    checkins: Vec<Duration>,
    sign_ins: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

/// One SIP2 terminal: a connection and a read buffer.
struct Terminal {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    answer: Vec<u8>,
}

impl Terminal {
    async fn connect(address: &str) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            reader: tokio::io::BufReader::new(reader),
            writer,
            answer: Vec::with_capacity(512),
        })
    }

    /// Sends `message` (CR included) and reads the answer (CR included).
    async fn call(&mut self, message: &[u8]) -> std::io::Result<&[u8]> {
        self.writer.write_all(message).await?;
        self.answer.clear();
        self.reader.read_until(b'\r', &mut self.answer).await?;
        if self.answer.last() != Some(&b'\r') {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(&self.answer)
    }
}

/// The screen message (AF) of an answer, to tell errors apart.
fn screen_message(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let af = text
        .split('|')
        .find_map(|f| f.strip_prefix("AF"))
        .unwrap_or_default()
        .to_owned();
    format!("{} {af}", text.get(..3).unwrap_or_default())
}

async fn sip2_load(
    address: &str,
    login: &str,
    password: &str,
    patron_file: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    const DATE: &str = "20260301    120000";
    let patrons = std::fs::read_to_string(patron_file)?.lines().count() as u64;
    let copies = env_number("BENCH_COPIES", 100_000);
    let workers = env_number("BENCH_CONCURRENCY", 8);
    let session = env_number("BENCH_SIP2_SESSION", 1).max(1);
    let sign_in = env_number("BENCH_SIP2_SIGN_IN", 0) == 1;
    let warmup = Duration::from_secs(env_number("BENCH_WARMUP", 2));
    let duration = Duration::from_secs(env_number("BENCH_DURATION", 10));
    let pin = std::env::var("BENCH_PIN").unwrap_or_else(|_| "2468".to_owned());
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + duration;

    let mut tasks = Vec::new();
    for worker in 0..workers {
        let mut terminal = Terminal::connect(address).await?;
        let answer = terminal
            .call(format!("9300CN{login}|CO{password}|\r").as_bytes())
            .await?;
        if !answer.starts_with(b"941") {
            return Err(format!(
                "terminal {login} could not log in: {}",
                screen_message(answer)
            )
            .into());
        }
        let pin = pin.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Sip2Samples::default();
            let mut copy = worker;
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (worker + 1);
            let mut card = String::new();
            let mut cycle = 0u64;
            while Instant::now() < stop {
                if cycle.is_multiple_of(session) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    card = card_of(rng % patrons);
                    if sign_in {
                        // A kiosk signs the patron in (63 with the PIN) before the
                        // first item; the PIN check, one Argon2 hash, happens here.
                        let info = format!("63001{DATE}          AObench|AA{card}|AC|AD{pin}|\r");
                        let began = Instant::now();
                        let answer = terminal.call(info.as_bytes()).await.map(|a| {
                            (a.starts_with(b"64") && a.windows(4).any(|w| w == b"|CQY"))
                                .then_some(())
                                .ok_or_else(|| screen_message(a))
                        });
                        let done = Instant::now();
                        let broken = answer.is_err();
                        if began >= measure_from && done <= stop {
                            match answer {
                                Ok(Ok(())) => samples.sign_ins.push(done - began),
                                Ok(Err(refused)) => {
                                    *samples.errors.entry(refused).or_default() += 1
                                }
                                Err(e) => *samples.errors.entry(e.to_string()).or_default() += 1,
                            }
                        }
                        if broken {
                            break;
                        }
                    }
                }
                cycle += 1;
                let barcode = format!("CIRC{copy}");
                copy = (copy + workers) % copies;
                let checkout =
                    format!("11NN{DATE}{DATE}AObench|AA{card}|AB{barcode}|AC|AD{pin}|\r");
                let checkin = format!("09N{DATE}{DATE}AP|AObench|AB{barcode}|AC|\r");
                let began = Instant::now();
                let out = terminal.call(checkout.as_bytes()).await.map(|a| {
                    a.starts_with(b"121")
                        .then_some(())
                        .ok_or_else(|| screen_message(a))
                });
                let checked_out = Instant::now();
                let back = terminal.call(checkin.as_bytes()).await.map(|a| {
                    a.starts_with(b"101")
                        .then_some(())
                        .ok_or_else(|| screen_message(a))
                });
                let done = Instant::now();
                let broken = out.is_err() || back.is_err();
                if began >= measure_from && done <= stop {
                    let mut ok = true;
                    for result in [out, back] {
                        let error = match result {
                            Ok(Ok(())) => continue,
                            Ok(Err(refused)) => refused,
                            Err(e) => e.to_string(),
                        };
                        ok = false;
                        *samples.errors.entry(error).or_default() += 1;
                    }
                    if ok {
                        samples.pairs.push(done - began);
                        samples.checkouts.push(checked_out - began);
                        samples.checkins.push(done - checked_out);
                    }
                }
                if broken {
                    break;
                }
            }
            samples
        }));
    }
    let mut all = Sip2Samples::default();
    for task in tasks {
        let s = task.await?;
        all.pairs.extend(s.pairs);
        all.checkouts.extend(s.checkouts);
        all.checkins.extend(s.checkins);
        all.sign_ins.extend(s.sign_ins);
        for (k, v) in s.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &mut Vec<Duration>, p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_unstable();
        let index = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        ms(v[index])
    };
    println!("terminals: {workers}");
    println!("checkouts per patron: {session}");
    println!(
        "patron sign-in (63) first: {}",
        if sign_in { "yes" } else { "no" }
    );
    println!("measured seconds: {}", duration.as_secs());
    println!("pairs: {}", all.pairs.len());
    println!(
        "pairs/s: {:.1}",
        all.pairs.len() as f64 / duration.as_secs_f64()
    );
    println!("pair p50 ms: {:.2}", pct(&mut all.pairs, 0.50));
    println!("pair p99 ms: {:.2}", pct(&mut all.pairs, 0.99));
    println!("11 p50 ms: {:.2}", pct(&mut all.checkouts, 0.50));
    println!("11 p99 ms: {:.2}", pct(&mut all.checkouts, 0.99));
    println!("11 max ms: {:.2}", pct(&mut all.checkouts, 1.0));
    println!("09 p50 ms: {:.2}", pct(&mut all.checkins, 0.50));
    println!("09 p99 ms: {:.2}", pct(&mut all.checkins, 0.99));
    println!("09 max ms: {:.2}", pct(&mut all.checkins, 1.0));
    if sign_in {
        println!("63 sign-ins: {}", all.sign_ins.len());
        println!("63 p50 ms: {:.2}", pct(&mut all.sign_ins, 0.50));
        println!("63 p99 ms: {:.2}", pct(&mut all.sign_ins, 0.99));
    }
    let errors: u64 = all.errors.values().sum();
    println!("errors: {errors}");
    for (what, count) in &all.errors {
        let what: String = what.chars().take(200).collect();
        println!("error x{count}: {what}");
    }
    Ok(())
}

//! The in-process view of live sessions: what an authenticated request needs
//! (the session and its account), kept in memory so that most requests do not
//! ask the database, while logout and every other revocation stay immediate.
//!
//! **This process.** Every store method that changes a user or ends a session
//! invalidates the view after its transaction has finished, whatever its outcome
//! ([`Store::auth_write`]). A fill (a database read put into the view) is
//! dropped when any invalidation happened after the read began (the generation
//! counter), so a read that saw the account before a revocation cannot bring it
//! back afterwards.
//!
//! **SQLite.** Every `Store` on one database file in this process shares one
//! view, and before answering, the view reads the WAL-index header at the start
//! of the `-shm` file (documented at <https://www.sqlite.org/walformat.html>; its
//! change counter and last frame change with every commit, by any connection of
//! any process). When it differs from the header seen last, the view is emptied
//! first. So the view is exact even for changes made outside Carrel (an
//! operator's SQL, another process), at the cost of a `pread` per request, and a
//! write of any kind empties it. If the header cannot be read, the view is not used.
//!
//! **Several processes (PostgreSQL).** Triggers on `users` and `sessions`
//! (migration 0012) send a notification on channel [`CHANNEL`] with every
//! change, delivered at commit, in commit order, to every instance's listener
//! (`sqlx` `PgListener` on a connection of its own). Each listener also sends
//! itself a heartbeat every [`HEARTBEAT_EVERY`]; receiving the heartbeat sent at
//! `t` proves that every change committed before `t` has been applied here. The
//! view is used only while the last heartbeat received is younger than
//! [`MAX_LAG`]: a revocation committed on another instance is honoured here
//! within `MAX_LAG` (half a second) or the request goes to the database. Before
//! the first subscription, after a lost connection, while reconnecting or when
//! heartbeats lag, every request reads the database; on each (re)subscription the
//! view is emptied (notifications sent while disconnected are lost) and trusted
//! again only from the first heartbeat sent after that.
//!
//! **Rendered catalog pages** (lists without words, [`Store::list_items_page`])
//! are kept by the same view, under the same trust: on SQLite any commit empties
//! them; on PostgreSQL triggers on `items` and `copies` (migration 0017) send
//! `c` on the same channel, and the pages are used only while the channel is
//! proven fresh. In this process every write empties them when its transaction
//! has finished (the guard in `on_writer!`), so a write is seen by the next read
//! at once; the page generation drops a fill whose read may predate a write.
//!
//! The freshness window measures the channel's real elapsed time (a monotonic
//! clock), not a business rule, so it deliberately does not read the injectable
//! clock; session expiry does (callers pass `now`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::catalog::{ItemPage, ItemSearch};
use crate::revocation::AuthChange;
use crate::sessions::SessionAuth;
use crate::{Store, StoreError, User};

/// The notification channel the triggers of migration 0012 send on.
pub const CHANNEL: &str = "carrel_auth";
/// How often each listener proves its channel is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);
/// How old the last proof may be for the view to be used.
pub const MAX_LAG: Duration = Duration::from_millis(500);
/// At most this many sessions are held; a full view starts over.
const CAPACITY: usize = 8192;
/// At most this many bytes of rendered pages are held; a full view starts over.
const PAGE_BYTES: usize = 32 << 20;

/// A live session and its account, as one authenticated request needs them.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub session_id: Uuid,
    /// `None` for a full session; `mfa_setup` when it may only enrol MFA.
    pub scope: Option<String>,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub user: Arc<User>,
}

impl From<SessionAuth> for LiveSession {
    fn from(auth: SessionAuth) -> Self {
        Self {
            session_id: auth.session_id,
            scope: auth.scope,
            last_used_at: auth.last_used_at,
            expires_at: auth.expires_at,
            user: Arc::new(auth.user),
        }
    }
}

/// The state of the invalidation channel, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewStatus {
    /// True when the view is used now (exact, or the channel is proven fresh).
    pub trusted: bool,
    /// True on SQLite: no channel is needed.
    pub exact: bool,
    /// Sessions answered from the view / read from the database, since start.
    pub hits: u64,
    pub misses: u64,
    /// Catalog pages answered from the view / rendered by the database, since start.
    pub page_hits: u64,
    pub page_misses: u64,
    /// Successful (re)subscriptions of the listener.
    pub subscriptions: u64,
    /// The listener's PostgreSQL backend process id, while subscribed.
    pub listener_pid: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct SessionCache {
    entries: RwLock<HashMap<Uuid, LiveSession>>,
    /// Bumped, under the write lock, by every invalidation.
    generation: AtomicU64,
    /// Rendered catalog pages by their search, and the bytes they hold.
    pages: RwLock<Pages>,
    /// Bumped, under the pages' write lock, whenever they are emptied.
    page_generation: AtomicU64,
    page_hits: AtomicU64,
    page_misses: AtomicU64,
    exact: bool,
    base: Instant,
    /// Nanoseconds since `base`: the view is used before this instant.
    fresh_until: AtomicU64,
    /// Heartbeats sent before this instant (nanoseconds since `base`) prove nothing.
    heartbeats_from: AtomicU64,
    /// SQLite: the WAL-index header last seen.
    wal: Option<Mutex<WalWatch>>,
    hits: AtomicU64,
    misses: AtomicU64,
    subscriptions: AtomicU64,
    listener_pid: AtomicU32,
    following: AtomicBool,
    /// While set, the listener stays unsubscribed (see [`Store::hold_revocation_channel`]).
    held: AtomicBool,
    /// Tells this view's tasks to stop when the view goes away.
    stop: tokio::sync::watch::Sender<()>,
    /// Identifies this view's own heartbeats on the shared channel.
    id: Uuid,
}

impl SessionCache {
    /// A view for PostgreSQL: used only while the channel proves it fresh.
    pub(crate) fn new() -> Self {
        Self::with_wal(false, None)
    }

    fn with_wal(exact: bool, wal: Option<WalWatch>) -> Self {
        Self {
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            pages: RwLock::default(),
            page_generation: AtomicU64::new(0),
            page_hits: AtomicU64::new(0),
            page_misses: AtomicU64::new(0),
            exact,
            base: Instant::now(),
            fresh_until: AtomicU64::new(0),
            heartbeats_from: AtomicU64::new(u64::MAX),
            wal: wal.map(Mutex::new),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            listener_pid: AtomicU32::new(0),
            following: AtomicBool::new(false),
            held: AtomicBool::new(false),
            stop: tokio::sync::watch::channel(()).0,
            id: Uuid::new_v4(),
        }
    }

    /// The view a store on `pool` keeps: SQLite's shares the file's
    /// process-wide view; PostgreSQL's is its own (kept by notifications).
    pub(crate) fn for_pool(pool: &crate::pool::DbPool) -> Arc<Self> {
        match pool {
            crate::pool::DbPool::Sqlite(db) => {
                Self::for_sqlite_file(db.read.connect_options().get_filename().to_path_buf())
            }
            crate::pool::DbPool::Postgres(_) => Arc::new(Self::new()),
        }
    }

    /// The view shared by every store on one SQLite file in this process.
    pub(crate) fn for_sqlite_file(file: PathBuf) -> Arc<Self> {
        static VIEWS: LazyLock<Mutex<HashMap<PathBuf, Weak<SessionCache>>>> =
            LazyLock::new(Default::default);
        let mut views = VIEWS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        views.retain(|_, view| view.strong_count() > 0);
        if let Some(view) = views.get(&file).and_then(Weak::upgrade) {
            return view;
        }
        let view = Arc::new(Self::with_wal(true, Some(WalWatch::new(&file))));
        views.insert(file, Arc::downgrade(&view));
        view
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the view may answer now (on SQLite, after emptying it if the
    /// database changed since it was last asked).
    fn trusted(&self) -> bool {
        if self.exact {
            let Some(wal) = &self.wal else { return false };
            let mut wal = wal.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            return match wal.changed() {
                Some(false) => true,
                Some(true) => {
                    self.clear();
                    true
                }
                None => false,
            };
        }
        self.now_nanos() < self.fresh_until.load(Ordering::Acquire)
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, LiveSession>> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session if the view may answer and holds it unexpired.
    pub(crate) fn get(&self, session_id: Uuid, now: OffsetDateTime) -> Option<LiveSession> {
        let found = if self.trusted() {
            self.entries
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&session_id)
                .filter(|s| s.expires_at > now)
                .cloned()
        } else {
            None
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Read before a database read that may fill the view.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a session read from the database, unless anything was invalidated
    /// since `generation` was taken (the read may predate that change).
    pub(crate) fn fill(&self, generation: u64, session: LiveSession) {
        let mut entries = self.write_entries();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(session.session_id, session);
    }

    /// Forgets what `change` may have altered.
    pub(crate) fn invalidate(&self, change: AuthChange) {
        let mut entries = self.write_entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        match change {
            AuthChange::Session(id) => {
                entries.remove(&id);
            }
            AuthChange::User(id) => entries.retain(|_, s| s.user.id != id),
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        let mut entries = self.write_entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        drop(entries);
        self.clear_pages();
    }

    fn write_pages(&self) -> std::sync::RwLockWriteGuard<'_, Pages> {
        self.pages
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The rendered page of `search` if the view may answer and holds it.
    pub(crate) fn page(&self, search: &ItemSearch) -> Option<ItemPage> {
        let found = if self.trusted() {
            self.pages
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .by_search
                .get(search)
                .cloned()
        } else {
            None
        };
        let counter = if found.is_some() {
            &self.page_hits
        } else {
            &self.page_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Read before rendering a page that may fill the view.
    pub(crate) fn page_generation(&self) -> u64 {
        self.page_generation.load(Ordering::Acquire)
    }

    /// Keeps a page the database rendered, unless the catalog may have changed
    /// since `generation` was taken.
    pub(crate) fn fill_page(&self, generation: u64, search: &ItemSearch, page: &ItemPage) {
        let mut pages = self.write_pages();
        if self.page_generation.load(Ordering::Acquire) != generation {
            return;
        }
        let size = page.json.len();
        if pages.bytes.saturating_add(size) > PAGE_BYTES {
            pages.by_search.clear();
            pages.bytes = 0;
        }
        if let Some(old) = pages.by_search.insert(search.clone(), page.clone()) {
            pages.bytes = pages.bytes.saturating_sub(old.json.len());
        }
        pages.bytes = pages.bytes.saturating_add(size);
    }

    /// Forgets every rendered page.
    pub(crate) fn clear_pages(&self) {
        let mut pages = self.write_pages();
        self.page_generation.fetch_add(1, Ordering::AcqRel);
        pages.by_search.clear();
        pages.bytes = 0;
    }

    /// Records a `last_used_at` the store has just written.
    pub(crate) fn touched(&self, session_id: Uuid, at: OffsetDateTime) {
        if let Some(s) = self.write_entries().get_mut(&session_id)
            && s.last_used_at < at
        {
            s.last_used_at = at;
        }
    }

    fn channel_lost(&self) {
        self.heartbeats_from.store(u64::MAX, Ordering::Release);
        self.fresh_until.store(0, Ordering::Release);
        self.listener_pid.store(0, Ordering::Release);
    }

    /// Subscribed again: what was missed is unknown, so start over, and only
    /// heartbeats sent from now on prove freshness.
    fn channel_subscribed(&self, pid: u32) {
        self.clear();
        self.heartbeats_from
            .store(self.now_nanos(), Ordering::Release);
        self.listener_pid.store(pid, Ordering::Release);
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies one notification.
    fn apply(&self, payload: &str) {
        let change = match payload.split_once(':') {
            Some(("s", id)) => Uuid::parse_str(id).ok().map(AuthChange::Session),
            Some(("u", id)) => Uuid::parse_str(id).ok().map(AuthChange::User),
            None if payload == "c" => {
                self.clear_pages();
                return;
            }
            Some(("hb", rest)) => {
                if let Some((id, sent)) = rest.split_once(':')
                    && Uuid::parse_str(id).ok() == Some(self.id)
                    && let Ok(sent) = sent.parse::<u64>()
                    && sent >= self.heartbeats_from.load(Ordering::Acquire)
                {
                    self.fresh_until
                        .fetch_max(sent.saturating_add(Self::nanos(MAX_LAG)), Ordering::AcqRel);
                }
                // Another instance's heartbeat: nothing to do.
                return;
            }
            _ => None,
        };
        match change {
            Some(change) => self.invalidate(change),
            // Not understood: assume the worst.
            None => self.clear(),
        }
    }

    pub(crate) fn status(&self) -> ViewStatus {
        let pid = self.listener_pid.load(Ordering::Acquire);
        ViewStatus {
            trusted: self.trusted(),
            exact: self.exact,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            page_hits: self.page_hits.load(Ordering::Relaxed),
            page_misses: self.page_misses.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            listener_pid: (pid != 0).then_some(pid),
        }
    }
}

/// Invalidates when dropped: after the write finished, or when its future was
/// dropped mid-flight (a cancelled request). A commit that lands after that is
/// caught by the `-shm` header on SQLite and by its notification on PostgreSQL.
struct WriteGuard<'a> {
    cache: &'a SessionCache,
    change: AuthChange,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.cache.invalidate(self.change);
    }
}

/// Rendered catalog pages (see the module docs).
#[derive(Debug, Default)]
struct Pages {
    by_search: HashMap<ItemSearch, ItemPage>,
    bytes: usize,
}

/// Empties the rendered pages when dropped: held by every write (`on_writer!`)
/// until its transaction has finished, whatever its outcome.
pub(crate) struct CatalogWrite<'a>(pub(crate) &'a SessionCache);

impl Drop for CatalogWrite<'_> {
    fn drop(&mut self) {
        self.0.clear_pages();
    }
}

/// The `-shm` file of a SQLite database in WAL mode, and its header as last seen.
#[derive(Debug)]
struct WalWatch {
    path: PathBuf,
    file: Option<std::fs::File>,
    seen: Option<[u8; WAL_HEADER]>,
}

/// The first copy of the WAL-index header: version, change counter, page size,
/// last valid frame, page count, checksums and salts (48 bytes).
const WAL_HEADER: usize = 48;

impl WalWatch {
    fn new(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-shm");
        Self {
            path: PathBuf::from(path),
            file: None,
            seen: None,
        }
    }

    /// `Some(true)` if anything committed since the last call, `Some(false)` if
    /// not, `None` if the header cannot be read (then nothing may be assumed).
    #[cfg(unix)]
    fn changed(&mut self) -> Option<bool> {
        use std::os::unix::fs::{FileExt as _, MetadataExt as _};
        // SQLite deletes the file when its last connection closes and makes a
        // new one later: a handle to an unlinked file is stale.
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.metadata().map_or(true, |m| m.nlink() == 0))
        {
            self.file = None;
        }
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
            self.seen = None;
        }
        let mut header = [0u8; WAL_HEADER];
        let read = self.file.as_ref()?.read_at(&mut header, 0).ok()?;
        if read != WAL_HEADER {
            self.file = None;
            return None;
        }
        let changed = self.seen != Some(header);
        self.seen = Some(header);
        Some(changed)
    }

    #[cfg(not(unix))]
    fn changed(&mut self) -> Option<bool> {
        None
    }
}

impl Store {
    /// Runs a write that may change `change`, then invalidates the view: after
    /// the transaction has finished, whatever its outcome (see the module docs).
    pub(crate) async fn auth_write<T>(
        &self,
        change: AuthChange,
        write: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let _invalidate = WriteGuard {
            cache: &self.session_view,
            change,
        };
        write.await
    }

    /// The live session `session_id` with its account, from the in-process view
    /// when it may answer, else from the database (one indexed lookup). `None`
    /// when unknown, revoked, expired, or its account is inactive or deleted.
    pub async fn live_session(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<LiveSession>, StoreError> {
        if let Some(hit) = self.session_view.get(session_id, now) {
            return Ok(Some(hit));
        }
        let generation = self.session_view.generation();
        let Some(auth) = self.session_auth(session_id).await? else {
            return Ok(None);
        };
        if !auth.is_live(now) {
            return Ok(None);
        }
        let live = LiveSession::from(auth);
        self.session_view.fill(generation, live.clone());
        Ok(Some(live))
    }

    /// How the in-process session view stands.
    pub fn session_view_status(&self) -> ViewStatus {
        self.session_view.status()
    }

    /// Waits (at most `timeout`) until every change committed before this call
    /// is reflected in the view, or the view is not in use; true if so. Exact
    /// views (SQLite) never wait. For tests and tools that write behind
    /// Carrel's back and want to read their change at once on PostgreSQL.
    pub async fn revocations_caught_up(&self, timeout: Duration) -> bool {
        let view = &self.session_view;
        if view.exact {
            return true;
        }
        let start = view.now_nanos();
        let deadline = Instant::now() + timeout;
        loop {
            let fresh_until = view.fresh_until.load(Ordering::Acquire);
            // A heartbeat sent after `start` was received, or the view is unused.
            if fresh_until > start.saturating_add(SessionCache::nanos(MAX_LAG))
                || fresh_until <= view.now_nanos()
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Keeps the revocation channel down (`true`: drops the subscription at the
    /// next notification and does not subscribe again) or lets it come back. For
    /// tests of the fallback; the view is not used while the channel is down.
    pub fn hold_revocation_channel(&self, held: bool) {
        self.session_view.held.store(held, Ordering::Release);
    }

    /// PostgreSQL: starts following changes made by every instance (see the
    /// module docs); until this runs the view is never used. Does nothing on
    /// SQLite or when already following. Needs a Tokio runtime.
    pub fn follow_revocations(&self) {
        let crate::pool::DbPool::Postgres(crate::pool::Db { read: pool, .. }) = &self.pool else {
            return;
        };
        if self.session_view.following.swap(true, Ordering::AcqRel) {
            return;
        }
        let options = (*pool.connect_options())
            .clone()
            .application_name("carrel-revocations");
        tokio::spawn(follow(Arc::downgrade(&self.session_view), options));
    }
}

/// The listener task: subscribes, applies notifications, resubscribes after a
/// loss (with backoff); stops when the view is dropped.
async fn follow(view: Weak<SessionCache>, options: PgConnectOptions) {
    let Some(mut stop) = view.upgrade().map(|v| v.stop.subscribe()) else {
        return;
    };
    // Two connections: the listener's, and one for heartbeats.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(MAX_LAG)
        .connect_lazy_with(options);
    let heartbeats = tokio::spawn(send_heartbeats(view.clone(), pool.clone()));
    let mut backoff = Duration::from_millis(50);
    loop {
        if view
            .upgrade()
            .is_some_and(|v| v.held.load(Ordering::Acquire))
        {
            if let Some(v) = view.upgrade() {
                v.channel_lost();
            }
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(Duration::from_millis(20)) => continue,
            }
        }
        match subscribe(&pool).await {
            Ok((mut listener, pid)) => {
                let Some(v) = view.upgrade() else { break };
                v.channel_subscribed(pid);
                drop(v);
                backoff = Duration::from_millis(50);
                loop {
                    let message = tokio::select! {
                        biased;
                        _ = stop.changed() => { heartbeats.abort(); return; }
                        message = listener.try_recv() => message,
                    };
                    let Some(v) = view.upgrade() else { break };
                    if v.held.load(Ordering::Acquire) {
                        v.channel_lost();
                        break;
                    }
                    match message {
                        Ok(Some(notification)) => v.apply(notification.payload()),
                        Ok(None) | Err(_) => {
                            v.channel_lost();
                            tracing::warn!(
                                "revocation channel lost; sessions are checked in the database until it is back"
                            );
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                if let Some(v) = view.upgrade() {
                    v.channel_lost();
                }
                tracing::warn!(%error, "cannot subscribe to the revocation channel; retrying");
            }
        }
        if view.strong_count() == 0 {
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    heartbeats.abort();
}

async fn subscribe(pool: &sqlx::PgPool) -> Result<(PgListener, u32), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut listener)
        .await?;
    Ok((listener, u32::try_from(pid).unwrap_or(0)))
}

/// Sends `hb:<view id>:<nanoseconds since the view's base>` every
/// [`HEARTBEAT_EVERY`]; the time is taken before the notification is sent.
async fn send_heartbeats(view: Weak<SessionCache>, pool: sqlx::PgPool) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(v) = view.upgrade() else { return };
        let payload = format!("hb:{}:{}", v.id, v.now_nanos());
        drop(v);
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "revocation heartbeat not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: Uuid, expires_at: OffsetDateTime) -> LiveSession {
        let now = OffsetDateTime::now_utc();
        LiveSession {
            session_id: Uuid::new_v4(),
            scope: None,
            last_used_at: now,
            expires_at,
            user: Arc::new(User {
                id: user,
                email: "a@example.com".into(),
                username: "a".into(),
                full_name: None,
                role: carrel_core::roles::Role::Patron,
                password_hash: None,
                email_verified: true,
                is_active: true,
                mfa_enabled: false,
                keep_loan_history: false,
                failed_logins: 0,
                locked_until: None,
                password_changed_at: None,
                created_at: now,
                updated_at: now,
                deleted_at: None,
                deleted_by: None,
                card_number: None,
                home_branch_id: None,
                category: "adult".to_owned(),
            }),
        }
    }

    /// The stand-in `-shm` file of [`exact`], removed when the test ends.
    struct ShmFile(PathBuf);

    impl Drop for ShmFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn exact() -> (SessionCache, ShmFile) {
        // A view whose "database" is a plain file standing in for the -shm file.
        let dir = std::env::temp_dir().join(format!("carrel-view-{}", Uuid::new_v4()));
        let shm = PathBuf::from(format!("{}-shm", dir.display()));
        std::fs::write(&shm, [0u8; WAL_HEADER]).unwrap();
        (
            SessionCache::with_wal(true, Some(WalWatch::new(&dir))),
            ShmFile(shm),
        )
    }

    #[test]
    fn a_fill_older_than_an_invalidation_is_dropped() {
        let (view, _shm) = exact();
        let now = OffsetDateTime::now_utc();
        let s = session(Uuid::new_v4(), now + time::Duration::hours(1));
        let before = view.generation();
        view.invalidate(AuthChange::User(s.user.id));
        view.fill(before, s.clone());
        assert!(view.get(s.session_id, now).is_none());
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_some());
        view.invalidate(AuthChange::User(s.user.id));
        assert!(view.get(s.session_id, now).is_none());
    }

    fn search(limit: u32) -> ItemSearch {
        ItemSearch {
            terms: Vec::new(),
            prefix: false,
            author: None,
            item_type: None,
            subject: None,
            isbn: None,
            year_from: None,
            year_to: None,
            available_only: false,
            branch_id: None,
            sort: crate::catalog::ItemSort::Title { descending: false },
            after: None,
            limit,
        }
    }

    fn rendered(json: &str) -> ItemPage {
        ItemPage {
            json: json.into(),
            len: 0,
            next: None,
        }
    }

    #[test]
    fn a_page_rendered_before_a_write_is_not_kept_and_writes_empty_the_pages() {
        let (view, _shm) = exact();
        assert!(view.trusted(), "reads the header a first time");
        let before = view.page_generation();
        // A write finishes while the page is being rendered: the page may predate it.
        drop(CatalogWrite(&view));
        view.fill_page(before, &search(20), &rendered("[1]"));
        assert!(view.page(&search(20)).is_none());
        view.fill_page(view.page_generation(), &search(20), &rendered("[2]"));
        assert_eq!(&*view.page(&search(20)).unwrap().json, "[2]");
        assert!(
            view.page(&search(21)).is_none(),
            "another search, another page"
        );
        drop(CatalogWrite(&view));
        assert!(view.page(&search(20)).is_none());
    }

    #[test]
    fn pages_follow_the_channel_and_a_commit_anywhere() {
        let view = SessionCache::new();
        view.channel_subscribed(7);
        view.apply(&format!("hb:{}:{}", view.id, view.now_nanos()));
        view.fill_page(view.page_generation(), &search(20), &rendered("[]"));
        assert!(view.page(&search(20)).is_some());
        // A session notice leaves the pages; a catalog notice empties them.
        view.apply(&format!("s:{}", Uuid::new_v4()));
        assert!(view.page(&search(20)).is_some());
        view.apply("c");
        assert!(view.page(&search(20)).is_none());
        view.fill_page(view.page_generation(), &search(20), &rendered("[]"));
        view.channel_lost();
        assert!(
            view.page(&search(20)).is_none(),
            "a lost channel proves nothing"
        );

        // SQLite: any commit (a changed WAL-index header) empties them.
        let (exact, shm) = exact();
        assert!(exact.trusted());
        exact.fill_page(exact.page_generation(), &search(20), &rendered("[]"));
        assert!(exact.page(&search(20)).is_some());
        let mut header = [0u8; WAL_HEADER];
        header[8] = 1;
        std::fs::write(&shm.0, header).unwrap();
        assert!(exact.page(&search(20)).is_none());
    }

    #[test]
    fn pages_are_bounded_in_bytes() {
        let (view, _shm) = exact();
        assert!(view.trusted(), "reads the header a first time");
        let big = "x".repeat(PAGE_BYTES / 2 + 1);
        view.fill_page(view.page_generation(), &search(1), &rendered(&big));
        view.fill_page(view.page_generation(), &search(2), &rendered(&big));
        assert!(
            view.page(&search(1)).is_none(),
            "the full view started over"
        );
        assert!(view.page(&search(2)).is_some());
    }

    #[test]
    fn expired_entries_are_not_answered() {
        let (view, _shm) = exact();
        let now = OffsetDateTime::now_utc();
        let s = session(Uuid::new_v4(), now);
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_none());
    }

    #[test]
    fn the_channel_view_needs_a_fresh_heartbeat_of_its_own() {
        let view = SessionCache::new();
        let now = OffsetDateTime::now_utc();
        let s = session(Uuid::new_v4(), now + time::Duration::hours(1));
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_none(), "not subscribed yet");
        view.channel_subscribed(7);
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_none(), "no heartbeat yet");
        view.apply(&format!("hb:{}:{}", Uuid::new_v4(), view.now_nanos()));
        assert!(
            view.get(s.session_id, now).is_none(),
            "another view's heartbeat"
        );
        view.apply(&format!("hb:{}:{}", view.id, view.now_nanos()));
        assert!(view.get(s.session_id, now).is_some());
        view.apply(&format!("s:{}", s.session_id));
        assert!(view.get(s.session_id, now).is_none());
        view.fill(view.generation(), s.clone());
        view.channel_lost();
        assert!(view.get(s.session_id, now).is_none(), "lost");
        assert!(!view.status().trusted);
    }

    #[test]
    fn a_changed_or_missing_wal_header_empties_or_disables_the_view() {
        let (view, _shm) = exact();
        let now = OffsetDateTime::now_utc();
        let s = session(Uuid::new_v4(), now + time::Duration::hours(1));
        assert!(view.get(s.session_id, now).is_none());
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_some());
        let shm = view.wal.as_ref().unwrap().lock().unwrap().path.clone();
        let mut header = [0u8; WAL_HEADER];
        header[8] = 1; // the change counter
        std::fs::write(&shm, header).unwrap();
        assert!(view.get(s.session_id, now).is_none(), "emptied");
        view.fill(view.generation(), s.clone());
        assert!(view.get(s.session_id, now).is_some());
        std::fs::remove_file(&shm).unwrap();
        assert!(view.get(s.session_id, now).is_none(), "unlinked: not used");
        assert!(!view.status().trusted);
    }
}

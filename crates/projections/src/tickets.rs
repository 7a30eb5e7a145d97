//! The tickets view behind `GET /v1/tickets`: one row per ticket, filters, three sort orders
//! with ordered indexes, opaque keyset cursors (so paging is as cheap at page 10,000 as at page
//! 1, with no depth cap), and text search over subjects and messages in Chinese and English.
//!
//! Search indexes the subject, the description, public replies and customer messages; internal
//! notes are left out so that a search a customer can run never matches on internal text. A
//! ticket keeps the tokens of an earlier subject: it is still findable by what it used to say.

use std::collections::BTreeSet;

use domain::{
    AgentId, Channel, CustomerId, Event, Priority, StateCategory, TeamId, TicketId, TicketNumber,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::text::{each_token, tokens};
use crate::{Map, Projection, TicketEvent};

/// Most rows one page may hold.
pub const PAGE_LIMIT_MAX: usize = 200;
/// Longest search text, in bytes.
pub const SEARCH_BYTES_MAX: usize = 1000;
/// Longest cursor accepted, in bytes; real cursors are about 120.
pub const CURSOR_BYTES_MAX: usize = 256;

/// One ticket as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRow {
    pub id: TicketId,
    pub number: TicketNumber,
    pub subject: String,
    pub channel: Channel,
    pub requester: CustomerId,
    pub ticket_type: String,
    pub priority: Priority,
    pub state: String,
    pub category: StateCategory,
    pub team: Option<TeamId>,
    pub assignee: Option<AgentId>,
    pub tags: BTreeSet<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The stream version: what `If-Match` compares.
    pub version: u64,
    /// Public replies and customer messages, the creation not counted.
    pub messages: u32,
    /// The sentiment rule flagged the customer as upset (`CustomerUpsetFlagged`); internal.
    #[serde(default)]
    pub customer_upset: bool,
}

/// Which tickets a list shows; every field set must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// The state name, e.g. `waiting_on_customer`.
    pub state: Option<String>,
    pub category: Option<StateCategory>,
    pub team: Option<TeamId>,
    pub assignee: Option<AgentId>,
    /// Only tickets with no assignee.
    pub unassigned: bool,
    pub priority: Option<Priority>,
    pub requester: Option<CustomerId>,
    pub tag: Option<String>,
    pub channel: Option<Channel>,
    pub ticket_type: Option<String>,
    /// Half-open ranges `[from, to)`.
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    pub updated_from: Option<Timestamp>,
    pub updated_to: Option<Timestamp>,
    /// Every token of this text must occur in the ticket's subject or messages.
    pub text: Option<String>,
}

/// The order of a list; ties are broken by ticket id, so the order is total and cursors exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketSort {
    CreatedAsc,
    #[default]
    CreatedDesc,
    UpdatedAsc,
    UpdatedDesc,
    /// Most urgent first, then oldest first.
    Priority,
}

impl TicketSort {
    fn code(self) -> &'static str {
        match self {
            TicketSort::CreatedAsc => "ca",
            TicketSort::CreatedDesc => "cd",
            TicketSort::UpdatedAsc => "ua",
            TicketSort::UpdatedDesc => "ud",
            TicketSort::Priority => "p",
        }
    }

    fn descending(self) -> bool {
        matches!(self, TicketSort::CreatedDesc | TicketSort::UpdatedDesc)
    }
}

/// A list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: TicketFilter,
    pub sort: TicketSort,
    /// 1 to `PAGE_LIMIT_MAX`.
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TicketPage {
    pub items: Vec<TicketRow>,
    /// Present when more rows follow; pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

/// Why a query was refused: bad input from the caller, never a bug.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("limit {limit} is out of range: 1 to {max}")]
    LimitOutOfRange { limit: usize, max: usize },
    #[error("the search text is {bytes} bytes long; the most is {max}")]
    SearchTooLong { bytes: usize, max: usize },
    #[error("the cursor is not one this server issued")]
    BadCursor,
    #[error("the cursor belongs to another sort order; start again without a cursor")]
    CursorSortMismatch,
}

/// A position in one of the orders: (primary, secondary, ticket id), compared as a tuple.
type SortKey = (i64, i64, TicketId);

/// The tickets view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tickets {
    rows: Map<TicketId, TicketRow>,
    /// Every ticket in the order it was created here: a ticket's ordinal is its index.
    ids: Vec<TicketId>,
    /// Search token -> ordinals of the tickets whose text holds it, ascending. Ordinals rather
    /// than ids, and vectors rather than trees: a new ticket's ordinal goes at the end, and a
    /// list is a quarter of the size of a set of ids.
    postings: Map<String, Vec<u32>>,
    #[serde(skip)]
    ordinals: Map<TicketId, u32>,
    #[serde(skip)]
    by_created: BTreeSet<SortKey>,
    #[serde(skip)]
    by_updated: BTreeSet<SortKey>,
    #[serde(skip)]
    by_priority: BTreeSet<SortKey>,
    /// In replay mode the three orders are left empty and built once at the end, and postings
    /// are appended to unsorted (a reply to an older ticket came into the middle of a list)
    /// and sorted once at the end.
    #[serde(skip)]
    replaying: bool,
}

fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// Urgent sorts first.
fn priority_rank(priority: Priority) -> i64 {
    match priority {
        Priority::Urgent => 0,
        Priority::High => 1,
        Priority::Normal => 2,
        Priority::Low => 3,
    }
}

fn key(row: &TicketRow, sort: TicketSort) -> SortKey {
    match sort {
        TicketSort::CreatedAsc | TicketSort::CreatedDesc => (micros(row.created_at), 0, row.id),
        TicketSort::UpdatedAsc | TicketSort::UpdatedDesc => (micros(row.updated_at), 0, row.id),
        TicketSort::Priority => (priority_rank(row.priority), micros(row.created_at), row.id),
    }
}

impl Projection for Tickets {
    const NAME: &'static str = "tickets";
    // 2: postings of ordinals. 3: rows say whether the customer was flagged upset.
    const VERSION: u32 = 3;

    fn apply_event(&mut self, event: &TicketEvent) {
        let id = event.ticket_id;
        if let Event::TicketCreated(created) = &event.event {
            if self.rows.contains_key(&id) {
                return;
            }
            let row = TicketRow {
                id,
                number: created.number,
                subject: created.pii.subject.clone(),
                channel: created.channel,
                requester: created.requester,
                ticket_type: created.ticket_type.clone(),
                priority: created.priority,
                state: created.state.clone(),
                category: created.category,
                team: None,
                assignee: None,
                tags: created.tags.iter().cloned().collect(),
                created_at: event.at,
                updated_at: event.at,
                version: event.stream_version,
                messages: 0,
                customer_upset: false,
            };
            if !self.replaying {
                self.index(&row);
            }
            self.rows.insert(id, row);
            let ordinal = u32::try_from(self.ids.len()).expect("fewer than 2^32 tickets");
            self.ids.push(id);
            self.ordinals.insert(id, ordinal);
            self.add_text(ordinal, &created.pii.subject);
            self.add_text(ordinal, &created.pii.description);
            return;
        }
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        // Only the orders whose key moves are touched: creation never moves, priority rarely,
        // the update time on most events.
        let replaying = self.replaying;
        let updated_before = key(row, TicketSort::UpdatedAsc);
        let priority_before = key(row, TicketSort::Priority);
        row.updated_at = row.updated_at.max(event.at);
        row.version = event.stream_version;
        let mut text: [Option<&str>; 2] = [None, None];
        match &event.event {
            Event::TicketFieldsUpdated(updated) => {
                if let Some(subject) = &updated.pii.subject {
                    subject.clone_into(&mut row.subject);
                }
                text = [
                    updated.pii.subject.as_deref(),
                    updated.pii.description.as_deref(),
                ];
            }
            Event::PriorityChanged(changed) => row.priority = changed.to,
            Event::PriorityChangedByRule(changed) => row.priority = changed.to,
            Event::TagsAdded(added) => row.tags.extend(added.tags.iter().cloned()),
            Event::TagsRemoved(removed) => {
                for tag in &removed.tags {
                    row.tags.remove(tag);
                }
            }
            Event::TeamAssigned(assigned) => row.team = Some(assigned.to),
            Event::TeamTransferred(transferred) => {
                row.team = Some(transferred.to);
                if transferred.unassigned.is_some() {
                    row.assignee = None;
                }
            }
            Event::AgentAssigned(assigned) => row.assignee = Some(assigned.to),
            Event::AgentUnassigned(_) => row.assignee = None,
            Event::CustomerUpsetFlagged(_) => row.customer_upset = true,
            Event::PublicReplyPosted(reply) => {
                row.messages += 1;
                text[0] = Some(&reply.pii.body);
            }
            Event::CustomerMessageReceived(message) => {
                row.messages += 1;
                text[0] = Some(&message.pii.body);
            }
            Event::TicketMergedInto(merged) => {
                merged.to.clone_into(&mut row.state);
                row.category = StateCategory::Closed;
            }
            Event::TicketTransitioned(transitioned) => {
                transitioned.to.clone_into(&mut row.state);
                row.category = transitioned.to_category;
            }
            Event::TicketReopened(reopened) => {
                reopened.to.clone_into(&mut row.state);
                row.category = reopened.to_category;
            }
            _ => {}
        }
        let updated_after = key(row, TicketSort::UpdatedAsc);
        let priority_after = key(row, TicketSort::Priority);
        if replaying {
            // The orders are built from the rows by `finish_replay`.
        } else if updated_after != updated_before {
            self.by_updated.remove(&updated_before);
            self.by_updated.insert(updated_after);
        }
        if !replaying && priority_after != priority_before {
            self.by_priority.remove(&priority_before);
            self.by_priority.insert(priority_after);
        }
        if text.iter().any(Option::is_some) {
            if let Some(&ordinal) = self.ordinals.get(&id) {
                for text in text.into_iter().flatten() {
                    self.add_text(ordinal, text);
                }
            }
        }
    }

    fn restore(&mut self) {
        let rows: Vec<TicketRow> = self.rows.values().cloned().collect();
        for row in &rows {
            self.index(row);
        }
        self.ordinals = self
            .ids
            .iter()
            .enumerate()
            .map(|(ordinal, id)| {
                (
                    *id,
                    u32::try_from(ordinal).expect("fewer than 2^32 tickets"),
                )
            })
            .collect();
    }

    fn begin_replay(&mut self) {
        self.replaying = true;
    }

    fn finish_replay(&mut self) {
        self.replaying = false;
        for list in self.postings.values_mut() {
            // Mostly ascending already (measured: the unstable sort takes two thirds of the
            // stable one's time here).
            list.sort_unstable();
            list.dedup();
            // Repeats (a ticket's later messages with the same words) made it longer than an
            // incremental fold would; what they took beyond ordinary growth is given back.
            if list.capacity() / 2 > list.len() {
                list.shrink_to_fit();
            }
        }
        // Bulk-built from the keys, sorted once, instead of one tree insert per event.
        let keys = |sort: TicketSort| -> BTreeSet<SortKey> {
            self.rows.values().map(|row| key(row, sort)).collect()
        };
        self.by_created = keys(TicketSort::CreatedAsc);
        self.by_updated = keys(TicketSort::UpdatedAsc);
        self.by_priority = keys(TicketSort::Priority);
    }
}

impl Tickets {
    fn index(&mut self, row: &TicketRow) {
        self.by_created.insert(key(row, TicketSort::CreatedAsc));
        self.by_updated.insert(key(row, TicketSort::UpdatedAsc));
        self.by_priority.insert(key(row, TicketSort::Priority));
    }

    fn add_text(&mut self, ordinal: u32, text: &str) {
        let postings = &mut self.postings;
        let replaying = self.replaying;
        each_token(text, |token| {
            let list = match postings.get_mut(token) {
                Some(list) => list,
                None => postings.entry(token.to_owned()).or_default(),
            };
            if replaying {
                // Sorted and deduplicated by `finish_replay`; a repeat of the last one is
                // common (a word twice in a text) and dropped here.
                if list.last() != Some(&ordinal) {
                    list.push(ordinal);
                }
                return;
            }
            // A new ticket's ordinal is the largest: the common case is a push. Otherwise the
            // ticket is usually recent, so the place is sought from the end, by galloping: a
            // binary search over a list of a million ordinals misses the cache at every step.
            match list.last() {
                Some(last) if *last >= ordinal => {
                    let len = list.len();
                    let mut step = 1;
                    while step < len && list[len - 1 - step] > ordinal {
                        step *= 2;
                    }
                    // Everything before `low` is at most list[low] ≤ ordinal.
                    let low = len.saturating_sub(step + 1);
                    if let Err(at) = list[low..].binary_search(&ordinal) {
                        list.insert(low + at, ordinal);
                    }
                }
                _ => list.push(ordinal),
            }
        });
    }

    fn order(&self, sort: TicketSort) -> &BTreeSet<SortKey> {
        match sort {
            TicketSort::CreatedAsc | TicketSort::CreatedDesc => &self.by_created,
            TicketSort::UpdatedAsc | TicketSort::UpdatedDesc => &self.by_updated,
            TicketSort::Priority => &self.by_priority,
        }
    }

    pub fn get(&self, id: TicketId) -> Option<&TicketRow> {
        self.rows.get(&id)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One page of tickets matching the filter, in the requested order.
    pub fn list(&self, query: &ListQuery) -> Result<TicketPage, QueryError> {
        if query.limit == 0 || query.limit > PAGE_LIMIT_MAX {
            return Err(QueryError::LimitOutOfRange {
                limit: query.limit,
                max: PAGE_LIMIT_MAX,
            });
        }
        let after = match &query.cursor {
            Some(cursor) => Some(decode_cursor(cursor, query.sort)?),
            None => None,
        };
        let sort = query.sort;
        let filter = &query.filter;
        let mut items: Vec<TicketRow> = Vec::with_capacity(query.limit + 1);
        match &filter.text {
            Some(text) => {
                if text.len() > SEARCH_BYTES_MAX {
                    return Err(QueryError::SearchTooLong {
                        bytes: text.len(),
                        max: SEARCH_BYTES_MAX,
                    });
                }
                // Search narrows first, through the postings; the rest is filtered and sorted.
                let mut keys: Vec<SortKey> = self
                    .search(text)
                    .into_iter()
                    .filter_map(|id| self.rows.get(&id))
                    .filter(|row| matches(row, filter))
                    .map(|row| key(row, sort))
                    .filter(|candidate| beyond(candidate, after.as_ref(), sort))
                    .collect();
                // Only the page (and one more, for the cursor) is sorted: the rest is only
                // partitioned away, in linear time, however many tickets matched.
                let order = |x: &SortKey, y: &SortKey| {
                    if sort.descending() {
                        y.cmp(x)
                    } else {
                        x.cmp(y)
                    }
                };
                let page = keys.len().min(query.limit + 1);
                if page < keys.len() {
                    keys.select_nth_unstable_by(page, order);
                    keys.truncate(page);
                }
                keys.sort_unstable_by(order);
                items.extend(
                    keys.iter()
                        .take(query.limit + 1)
                        .filter_map(|key| self.rows.get(&key.2).cloned()),
                );
            }
            None => {
                let order = self.order(sort);
                let candidates: Box<dyn Iterator<Item = &SortKey>> =
                    match (&after, sort.descending()) {
                        (None, false) => Box::new(order.iter()),
                        (None, true) => Box::new(order.iter().rev()),
                        (Some(after), false) => Box::new(order.range((
                            std::ops::Bound::Excluded(*after),
                            std::ops::Bound::Unbounded,
                        ))),
                        (Some(after), true) => Box::new(
                            order
                                .range((
                                    std::ops::Bound::Unbounded,
                                    std::ops::Bound::Excluded(*after),
                                ))
                                .rev(),
                        ),
                    };
                items.extend(
                    candidates
                        .filter_map(|key| self.rows.get(&key.2))
                        .filter(|row| matches(row, filter))
                        .take(query.limit + 1)
                        .cloned(),
                );
            }
        }
        let next_cursor = if items.len() > query.limit {
            items.truncate(query.limit);
            items.last().map(|row| encode_cursor(&key(row, sort), sort))
        } else {
            None
        };
        Ok(TicketPage { items, next_cursor })
    }

    /// Tickets holding every token of `text` (none for a text without tokens).
    fn search(&self, text: &str) -> Vec<TicketId> {
        let mut lists: Vec<&[u32]> = Vec::new();
        for token in tokens(text) {
            match self.postings.get(&token) {
                Some(list) => lists.push(list),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|list| list.len());
        let Some((smallest, rest)) = lists.split_first() else {
            return Vec::new();
        };
        // Each other list is walked forward once, by galloping from where the last probe ended.
        let mut starts = vec![0usize; rest.len()];
        smallest
            .iter()
            .filter(|ordinal| {
                rest.iter().zip(starts.iter_mut()).all(|(list, start)| {
                    let tail = &list[*start..];
                    let mut step = 1;
                    while step < tail.len() && tail[step] < **ordinal {
                        step *= 2;
                    }
                    let window = &tail[..tail.len().min(step + 1)];
                    let at = window.partition_point(|other| other < *ordinal);
                    *start += at;
                    list.get(*start) == Some(*ordinal)
                })
            })
            .filter_map(|ordinal| self.ids.get(*ordinal as usize).copied())
            .collect()
    }
}

fn beyond(candidate: &SortKey, after: Option<&SortKey>, sort: TicketSort) -> bool {
    match after {
        None => true,
        Some(after) if sort.descending() => candidate < after,
        Some(after) => candidate > after,
    }
}

fn matches(row: &TicketRow, filter: &TicketFilter) -> bool {
    let in_range = |at: Timestamp, from: Option<Timestamp>, to: Option<Timestamp>| {
        from.is_none_or(|from| at >= from) && to.is_none_or(|to| at < to)
    };
    filter
        .state
        .as_ref()
        .is_none_or(|state| &row.state == state)
        && filter
            .category
            .is_none_or(|category| row.category == category)
        && filter.team.is_none_or(|team| row.team == Some(team))
        && filter
            .assignee
            .is_none_or(|agent| row.assignee == Some(agent))
        && (!filter.unassigned || row.assignee.is_none())
        && filter
            .priority
            .is_none_or(|priority| row.priority == priority)
        && filter
            .requester
            .is_none_or(|requester| row.requester == requester)
        && filter.tag.as_ref().is_none_or(|tag| row.tags.contains(tag))
        && filter.channel.is_none_or(|channel| row.channel == channel)
        && filter
            .ticket_type
            .as_ref()
            .is_none_or(|ticket_type| &row.ticket_type == ticket_type)
        && in_range(row.created_at, filter.created_from, filter.created_to)
        && in_range(row.updated_at, filter.updated_from, filter.updated_to)
}

/// A cursor is the last row's sort key, tagged with the sort, in hex so that clients treat it
/// as opaque and it survives any URL encoding.
fn encode_cursor(key: &SortKey, sort: TicketSort) -> String {
    let plain = format!("{}:{}:{}:{}", sort.code(), key.0, key.1, key.2 .0.simple());
    plain.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_cursor(cursor: &str, sort: TicketSort) -> Result<SortKey, QueryError> {
    if cursor.len() > CURSOR_BYTES_MAX || cursor.len() % 2 != 0 {
        return Err(QueryError::BadCursor);
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|index| {
            cursor
                .get(index..index + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or(QueryError::BadCursor)?;
    let plain = String::from_utf8(bytes).map_err(|_| QueryError::BadCursor)?;
    let mut parts = plain.split(':');
    let (Some(code), Some(primary), Some(secondary), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(QueryError::BadCursor);
    };
    if code != sort.code() {
        return Err(QueryError::CursorSortMismatch);
    }
    let primary = primary.parse().map_err(|_| QueryError::BadCursor)?;
    let secondary = secondary.parse().map_err(|_| QueryError::BadCursor)?;
    let id = uuid::Uuid::try_parse(id).map_err(|_| QueryError::BadCursor)?;
    Ok((primary, secondary, TicketId(id)))
}

#[cfg(test)]
mod tests {
    use domain::{Channel, Priority, StateCategory};
    use expect_test::{expect, Expect};

    use super::*;
    use crate::synth;
    use crate::testkit::{minute, minutes_of, short, Log};

    fn desk() -> Tickets {
        let mut log = Log::default();
        log.create(
            0,
            1,
            "无法支付 payment failed",
            Priority::Normal,
            Channel::Email,
            1,
        )
        .create(
            10,
            2,
            "System down since this morning",
            Priority::Urgent,
            Channel::Chat,
            2,
        )
        .create(20, 3, "订单未发货", Priority::Low, Channel::Web, 1)
        .create(30, 4, "Cannot log in", Priority::High, Channel::Email, 3)
        .team(31, 1, 1)
        .team(32, 2, 1)
        .team(33, 3, 2)
        .agent(40, 1, 7)
        .to(41, 1, "in_progress", StateCategory::Open)
        .reply(42, 1, "请提供付款截图 screenshot please")
        .message(50, 1, "截图在附件里")
        .priority(60, 3, Priority::High)
        .to(70, 4, "resolved", StateCategory::Solved);
        log.fold()
    }

    fn show(page: &Result<TicketPage, QueryError>) -> String {
        match page {
            Err(error) => format!("error: {error}"),
            Ok(page) => {
                let mut lines: Vec<String> = page
                    .items
                    .iter()
                    .map(|row| {
                        format!(
                            "{} {} {} {} team={} agent={} created={} updated={} v{} msgs={} {:?}",
                            short(row.id.0),
                            row.priority,
                            row.state,
                            row.category,
                            row.team.map_or("-".to_owned(), |team| short(team.0)),
                            row.assignee.map_or("-".to_owned(), |agent| short(agent.0)),
                            minutes_of(row.created_at),
                            minutes_of(row.updated_at),
                            row.version,
                            row.messages,
                            row.subject,
                        )
                    })
                    .collect();
                lines.push(format!("next: {}", page.next_cursor.is_some()));
                lines.join("\n")
            }
        }
    }

    fn check(filter: TicketFilter, sort: TicketSort, expect: Expect) {
        let query = ListQuery {
            filter,
            sort,
            limit: PAGE_LIMIT_MAX,
            cursor: None,
        };
        expect.assert_eq(&show(&desk().list(&query)));
    }

    #[test]
    fn lists_sorted() {
        check(
            TicketFilter::default(),
            TicketSort::CreatedDesc,
            expect![[r#"
                t4 high resolved solved team=- agent=- created=30 updated=70 v2 msgs=0 "Cannot log in"
                t3 high new new team=team2 agent=- created=20 updated=60 v3 msgs=0 "订单未发货"
                t2 urgent new new team=team1 agent=- created=10 updated=32 v2 msgs=0 "System down since this morning"
                t1 normal in_progress open team=team1 agent=agent7 created=0 updated=50 v6 msgs=2 "无法支付 payment failed"
                next: false"#]],
        );
        check(
            TicketFilter::default(),
            TicketSort::Priority,
            expect![[r#"
                t2 urgent new new team=team1 agent=- created=10 updated=32 v2 msgs=0 "System down since this morning"
                t3 high new new team=team2 agent=- created=20 updated=60 v3 msgs=0 "订单未发货"
                t4 high resolved solved team=- agent=- created=30 updated=70 v2 msgs=0 "Cannot log in"
                t1 normal in_progress open team=team1 agent=agent7 created=0 updated=50 v6 msgs=2 "无法支付 payment failed"
                next: false"#]],
        );
        check(
            TicketFilter::default(),
            TicketSort::UpdatedAsc,
            expect![[r#"
                t2 urgent new new team=team1 agent=- created=10 updated=32 v2 msgs=0 "System down since this morning"
                t1 normal in_progress open team=team1 agent=agent7 created=0 updated=50 v6 msgs=2 "无法支付 payment failed"
                t3 high new new team=team2 agent=- created=20 updated=60 v3 msgs=0 "订单未发货"
                t4 high resolved solved team=- agent=- created=30 updated=70 v2 msgs=0 "Cannot log in"
                next: false"#]],
        );
    }

    #[test]
    fn filters() {
        let sort = TicketSort::CreatedAsc;
        let team1 = TicketFilter {
            team: Some(synth::team(1)),
            ..TicketFilter::default()
        };
        check(
            team1,
            sort,
            expect![[r#"
            t1 normal in_progress open team=team1 agent=agent7 created=0 updated=50 v6 msgs=2 "无法支付 payment failed"
            t2 urgent new new team=team1 agent=- created=10 updated=32 v2 msgs=0 "System down since this morning"
            next: false"#]],
        );
        let filters = [
            TicketFilter {
                category: Some(StateCategory::New),
                unassigned: true,
                ..TicketFilter::default()
            },
            TicketFilter {
                state: Some("resolved".to_owned()),
                ..TicketFilter::default()
            },
            TicketFilter {
                assignee: Some(synth::agent(7)),
                ..TicketFilter::default()
            },
            TicketFilter {
                priority: Some(Priority::High),
                channel: Some(Channel::Web),
                ..TicketFilter::default()
            },
            TicketFilter {
                requester: Some(synth::customer(1)),
                ..TicketFilter::default()
            },
            TicketFilter {
                tag: Some("billing".to_owned()),
                created_from: Some(minute(10)),
                created_to: Some(minute(30)),
                ..TicketFilter::default()
            },
            TicketFilter {
                updated_from: Some(minute(60)),
                ..TicketFilter::default()
            },
            TicketFilter {
                tag: Some("nope".to_owned()),
                ..TicketFilter::default()
            },
        ];
        let model = desk();
        let answers: Vec<String> = filters
            .into_iter()
            .map(|filter| {
                let page = model
                    .list(&ListQuery {
                        filter,
                        sort,
                        limit: 10,
                        cursor: None,
                    })
                    .unwrap();
                page.items
                    .iter()
                    .map(|row| short(row.id.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        expect![[r#"
            t2 t3
            t4
            t1
            t3
            t1 t3
            t2 t3
            t3 t4

        "#]]
        .assert_eq(&(answers.join("\n") + "\n"));
    }

    #[test]
    fn searches_chinese_and_english_subjects_and_messages() {
        let model = desk();
        let search = |text: &str| {
            let filter = TicketFilter {
                text: Some(text.to_owned()),
                ..TicketFilter::default()
            };
            match model.list(&ListQuery {
                filter,
                sort: TicketSort::CreatedAsc,
                limit: 10,
                cursor: None,
            }) {
                Ok(page) => page
                    .items
                    .iter()
                    .map(|row| short(row.id.0))
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(error) => format!("error: {error}"),
            }
        };
        let answers: Vec<String> = [
            "支付",
            "PAYMENT",
            "截图",
            "发货",
            "system DOWN",
            "down 支付",
            "",
            "log",
        ]
        .iter()
        .map(|text| format!("{text:?} => {}", search(text)))
        .collect();
        expect![[r#"
            "支付" => t1
            "PAYMENT" => t1
            "截图" => t1
            "发货" => t3
            "system DOWN" => t2
            "down 支付" => 
            "" => 
            "log" => t4"#]]
        .assert_eq(&answers.join("\n"));
        let at_max = "a".repeat(SEARCH_BYTES_MAX);
        assert_eq!(search(&at_max), "");
        assert_eq!(
            search(&format!("{at_max}a")),
            "error: the search text is 1001 bytes long; the most is 1000"
        );
    }

    /// Pages through a large desk one row at a time in every order, with and without search:
    /// every ticket exactly once, in order, and the page limit holds at its bound.
    #[test]
    fn cursor_pages_cover_everything_once_at_any_depth() {
        let model: Tickets = {
            let mut model = Tickets::default();
            for record in synth::records(synth::history(synth::SynthConfig::small(9, 300))) {
                model.apply(record.view());
            }
            model
        };
        for sort in [
            TicketSort::CreatedAsc,
            TicketSort::CreatedDesc,
            TicketSort::UpdatedAsc,
            TicketSort::UpdatedDesc,
            TicketSort::Priority,
        ] {
            for text in [None, Some("支付".to_owned())] {
                let filter = TicketFilter {
                    text: text.clone(),
                    ..TicketFilter::default()
                };
                let all = model
                    .list(&ListQuery {
                        filter: filter.clone(),
                        sort,
                        limit: PAGE_LIMIT_MAX,
                        cursor: None,
                    })
                    .unwrap();
                let mut seen = Vec::new();
                let mut cursor = None;
                loop {
                    let page = model
                        .list(&ListQuery {
                            filter: filter.clone(),
                            sort,
                            limit: 7,
                            cursor: cursor.clone(),
                        })
                        .unwrap();
                    seen.extend(page.items.iter().map(|row| row.id));
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                let expected_len = if text.is_some() {
                    all.items.len()
                } else {
                    model.len()
                };
                assert_eq!(seen.len(), expected_len, "{sort:?} {text:?}");
                assert_eq!(
                    seen[..all.items.len()],
                    all.items.iter().map(|row| row.id).collect::<Vec<_>>()[..]
                );
            }
        }
        let limit = |limit| {
            model
                .list(&ListQuery {
                    filter: TicketFilter::default(),
                    sort: TicketSort::CreatedAsc,
                    limit,
                    cursor: None,
                })
                .map(|page| page.items.len())
        };
        assert_eq!(limit(PAGE_LIMIT_MAX), Ok(PAGE_LIMIT_MAX));
        assert_eq!(
            limit(PAGE_LIMIT_MAX + 1),
            Err(QueryError::LimitOutOfRange {
                limit: 201,
                max: 200
            })
        );
        assert_eq!(
            limit(0),
            Err(QueryError::LimitOutOfRange { limit: 0, max: 200 })
        );
    }

    #[test]
    fn bad_cursors_are_errors() {
        let model = desk();
        let page = model
            .list(&ListQuery {
                filter: TicketFilter::default(),
                sort: TicketSort::CreatedAsc,
                limit: 1,
                cursor: None,
            })
            .unwrap();
        let good = page.next_cursor.unwrap();
        let check = |cursor: &str, sort: TicketSort| match model.list(&ListQuery {
            filter: TicketFilter::default(),
            sort,
            limit: 1,
            cursor: Some(cursor.to_owned()),
        }) {
            Ok(page) => format!(
                "ok {}",
                page.items
                    .iter()
                    .map(|row| short(row.id.0))
                    .collect::<String>()
            ),
            Err(error) => format!("error: {error}"),
        };
        let cases = [
            (good.as_str(), TicketSort::CreatedAsc),
            (good.as_str(), TicketSort::Priority),
            ("zz", TicketSort::CreatedAsc),
            ("abc", TicketSort::CreatedAsc),
            ("6361", TicketSort::CreatedAsc),
            (&"00".repeat(CURSOR_BYTES_MAX), TicketSort::CreatedAsc),
        ];
        let answers: Vec<String> = cases
            .iter()
            .map(|(cursor, sort)| check(cursor, *sort))
            .collect();
        expect![[r#"
            ok t2
            error: the cursor belongs to another sort order; start again without a cursor
            error: the cursor is not one this server issued
            error: the cursor is not one this server issued
            error: the cursor is not one this server issued
            error: the cursor is not one this server issued"#]]
        .assert_eq(&answers.join("\n"));
    }
}

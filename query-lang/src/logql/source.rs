//! What evaluation reads from ([`LogSource`]) and what a source returns:
//! the pipeline and the evaluator both depend on this module.

use async_trait::async_trait;

use super::ast::{LineFilter, StreamMatcher};

/// One entry as a source returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEntry {
    pub timestamp_ns: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// One stream as a source returns it: labels sorted by name, entries
/// sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStream {
    pub labels: Vec<(String, String)>,
    pub entries: Vec<SourceEntry>,
}

/// Why evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Source(String),
    #[error(
        "the query would read more than {limit} log entries (max_query_samples); narrow the selector or the time range"
    )]
    TooManyEntries { limit: usize },
    #[error(
        "maximum of series ({limit}) reached for a single query (max_query_series); aggregate by fewer labels"
    )]
    TooManySeries { limit: usize },
    #[error("{0}")]
    Invalid(String),
    /// A metric query over entries its pipeline marked with `__error__`
    /// (Loki's message).
    #[error(
        "pipeline error: '{error}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )"
    )]
    Pipeline { error: String, series: String },
}

/// One piece of a source that is read whole (a head, a file), with the
/// times of its entries: `min_ns..=max_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The source's name for it, whatever the range asked.
    pub id: usize,
    pub min_ns: i64,
    pub max_ns: i64,
    /// Entries it holds (in all its time).
    pub rows: u64,
}

/// What [`LogSource::scan_part`] hands runs of entries to: a stream's
/// labels and a run of its entries.
pub type Visit<'v> = dyn for<'x> FnMut(&'x [(String, String)], &'x [SourceEntry]) + Send + 'v;

/// Where log entries come from.
#[async_trait]
pub trait LogSource: Send + Sync {
    /// The parts that may hold entries in `[start_ns, end_ns)`: a log
    /// query with a limit reads them from the end it starts at and stops
    /// once no unread part can hold an entry it would return. One part
    /// over all time (the default) reads everything at once.
    fn parts(&self, _start_ns: i64, _end_ns: i64) -> Vec<Part> {
        vec![Part {
            id: 0,
            min_ns: i64::MIN,
            max_ns: i64::MAX,
            rows: 0,
        }]
    }

    /// [`LogSource::select`] over some of [`LogSource::parts`] (by
    /// [`Part::id`]). Equal entries of one stream in two parts are both
    /// returned.
    async fn select_parts(
        &self,
        _parts: &[usize],
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        self.select(matchers, line_filters, start_ns, end_ns).await
    }

    /// Every entry in `[start_ns, end_ns)` of one part (by [`Part::id`])
    /// of the streams matching every matcher whose lines pass
    /// `line_filters`, handed to `visit` a run of one stream's entries at
    /// a time (labels sorted by name, entries by time), so that reading a
    /// part holds a run, not the part. A part holds an entry once. With
    /// `lines` false the caller reads no line (a count): a source may
    /// hand out entries with empty lines rather than read them.
    #[allow(clippy::too_many_arguments)]
    async fn scan_part(
        &self,
        part: usize,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        lines: bool,
        start_ns: i64,
        end_ns: i64,
        visit: &mut Visit<'_>,
    ) -> Result<(), EvalError> {
        let _ = lines;
        for s in self
            .select_parts(&[part], matchers, line_filters, start_ns, end_ns)
            .await?
        {
            visit(&s.labels, &s.entries);
        }
        Ok(())
    }

    /// The streams matching every matcher, with their entries in
    /// `[start_ns, end_ns)`; streams without such entries may be left out.
    /// `line_filters` are filters every returned entry's line must pass:
    /// a source may apply them early (the pipeline applies them again).
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError>;
}

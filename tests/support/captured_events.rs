//! A `tracing` subscriber that keeps every event it sees, for tests that check which events the
//! layers emit, at which level, with which fields.

// Shared by several test binaries, each of which uses only a part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: its target, level and fields (the message under `message`).
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) fields: BTreeMap<String, String>,
}

impl Captured {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Keeps every event; spans are ignored.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    /// The events seen so far whose target is `target`.
    pub(crate) fn with_target(&self, target: &str) -> Vec<Captured> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event.target == target)
            .cloned()
            .collect()
    }

    /// Runs `f` with this subscriber as the thread's default.
    ///
    /// A second subscriber that enables everything is registered for as long, because of how
    /// `tracing` caches a callsite's interest: while a single subscriber is registered, a
    /// callsite first reached on *another* thread (a test running beside this one, with no
    /// subscriber) is cached as uninteresting, and this thread's events at that callsite are
    /// lost. With two registered, every thread asks both.
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let _witness = tracing::Dispatch::new(Capture::default());
        tracing::subscriber::with_default(self.clone(), f)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

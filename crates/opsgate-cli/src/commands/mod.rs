//! One module per CLI verb group.

pub(crate) mod audit;
pub(crate) mod delegation;
pub(crate) mod deliverable;
pub(crate) mod gate;
pub(crate) mod handover;
pub(crate) mod insight;
pub(crate) mod notifications;
pub(crate) mod person;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod template;
pub(crate) mod token;
pub(crate) mod transition;
pub(crate) mod workflow;

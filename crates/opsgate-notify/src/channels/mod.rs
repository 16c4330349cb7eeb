//! The built-in channels, one file each, and what they share (the message a person reads, one
//! HTTP POST and what its answer means).

pub mod chat;
pub mod email;
mod http;
pub mod log;
pub mod message;
pub mod nats;
pub mod slack;
pub mod slack_bot;
pub mod teams;
pub mod webhook;

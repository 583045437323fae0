//! End-to-end tests of carelog against real PostgreSQL (and NATS, later): each test gets
//! its own database, cloned from a migrated template, owned by an ordinary role.
//!
//! PostgreSQL and NATS are found through `DATABASE_URL` (a role that may create roles
//! and databases, e.g. the `postgres` superuser) and `NATS_URL`; by default the local
//! services on 127.0.0.1. `scripts/test` starts private ones when there are none.

mod support;

mod access_events;
mod admin;
mod audit_api;
mod audit_verify;
mod auth;
mod auth_guard;
mod auth_tokens;
mod cli;
mod clinical;
mod clinical_matrix;
mod consent;
mod crypto_at_rest;
mod event_store;
mod gap_safe_reads;
mod gdpr;
mod keys;
mod logs;
mod metrics;
mod project_cli;
mod projector;
mod read_models;
mod rebuild;
mod relay;

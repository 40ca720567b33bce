//! Settings: `OPTIONS` as settings.py gives them (`options`), the `LOCATION` URL grammar and
//! per-server types (`location`), and the resolved configuration a topology is built from
//! (`resolved`).

pub mod location;
pub mod options;
pub mod resolved;

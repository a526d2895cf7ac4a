//! Interoperability tests: the published clients of other projects, run
//! against Strata's servers (see `tests/`). The library itself is empty.

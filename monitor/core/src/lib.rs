//! Pure decision core (being written).

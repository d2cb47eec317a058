/* Placeholder: replaced by the work on this area. */

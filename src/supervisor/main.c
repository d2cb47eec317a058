/* Placeholder: replaced by the work on the command line. */
int main(void);
int main(void) { return 1; }

// `embed_migrations!` reads the migration files at compile time, but cargo only watches the
// files it has already included: a new migration directory would not rebuild the crate (diesel's
// own advice is this line).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

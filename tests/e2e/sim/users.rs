//! Users files: their users replace the built-in ones; unknown roles and objects stop the start.

use super::*;

/// Starts a simulator with a users file holding `toml`.
async fn with_users(toml: &str) -> Result<RunningSim, String> {
    let users = UsersFile::new(toml);
    try_simulator_with(|o| o.users = Some(users.path.clone())).await
}

/// dave's users file: dave@internal (password dave) with `role` on `on`.
fn dave(role: &str, on: &str) -> String {
    format!(
        "[[user]]\nname = \"dave@internal\"\npassword = \"dave\"\n\
         grants = [{{ role = \"{role}\", on = \"{on}\" }}]\n"
    )
}

/// The users of a users file log in and see what they are granted; the built-in ones are gone.
#[tokio::test]
async fn users_file_replaces_the_built_in_users() {
    let sim = with_users(&dave("UserRole", "vm:vm-00007")).await.unwrap();
    let dave = api(&sim, "/vms").basic("dave@internal", "dave").send().await;
    assert_eq!(vm_names(&dave), [vm_name(7)]);
    assert_eq!(
        api(&sim, "").send().await.status,
        401,
        "admin is not a user any more"
    );
}

/// An unknown role in a users file stops the start with a message naming it.
#[tokio::test]
async fn users_file_with_an_unknown_role_fails() {
    let error = with_users(&dave("Wizard", "vm:vm-00007")).await.err().unwrap();
    assert_contains(&error, "unknown role `Wizard`");
}

/// A grant on an object that does not exist stops the start with a message naming it.
#[tokio::test]
async fn users_file_with_an_unknown_object_fails() {
    let error = with_users(&dave("UserRole", "vm:vm-99999")).await.err().unwrap();
    assert_contains(&error, "`vm:vm-99999` names no object");
}

package sqlite

// Migrations 3-5 are kept in constants so that each feature's schema sits in
// one place. Each becomes immutable once released, like the others.

// migrationPush (push notifications) is in notify.go.

// migrationStream creates what the live stream needs (stream.go).
const migrationStream = streamSchema

// migrationWorkflow (responsibility matrices) is in workflow.go.

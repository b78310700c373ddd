package postgres

// MigrateTo migrates the schema at url up to version target only.
var MigrateTo = migrateTo

// SchemaVersion is the schema version this package writes.
var SchemaVersion = schemaVersion

package postgres

// MigrateTo migrates the schema at url up to version target only.
var MigrateTo = migrateTo

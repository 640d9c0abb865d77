# frozen_string_literal: true

# The demo's data: the seed's organizations, spread over four cells in two regions.
#
# The `routes` table is global, as in the seed's design (its "Stateless Router" proposal decomposes
# `gitlab_routes` and `gitlab_users` into databases shared by every cell, replicated across regions):
# every cell reads the same rows and so can answer the router's learn question for any path, while
# `cell_id` says which cell owns each organization, namespace and project. One database file is
# shared by all four cell processes; in production each region would read a replica.
#
#   ruby demo/seed.rb demo-out/demo.sqlite3        # (re)creates and fills an SQLite file
#   DATABASE_URL=postgres://... ruby demo/seed.rb  # the same in PostgreSQL

require_relative "cell/db"

module Demo
  module Seed
    # Oldest first. The newest cell is the default cell: it takes new organizations and unknown routes.
    CELLS = [
      { "name" => "cell_us0", "region" => "US", "created_at" => "2023-01-10" }, # the legacy cell: users, admin, profile
      { "name" => "cell_us1", "region" => "US", "created_at" => "2023-09-04" },
      { "name" => "cell_eu0", "region" => "EU", "created_at" => "2024-02-12" },
      { "name" => "cell_eu1", "region" => "EU", "created_at" => "2024-11-05" }
    ].freeze

    ORGANIZATIONS = [
      { "path" => "my-company", "name" => "My Company", "region" => "EU", "cell" => "cell_eu0",
        "projects" => [%w[my-project public], %w[other-project public], %w[secret private]] },
      { "path" => "gitlab-org", "name" => "GitLab.org", "region" => "US", "cell" => "cell_us0",
        "projects" => [%w[gitlab public], %w[gitlab-runner public]] },
      { "path" => "acme-corp", "name" => "ACME Corp", "region" => "US", "cell" => "cell_us1",
        "projects" => [%w[website public], %w[billing private]] },
      { "path" => "new-startup", "name" => "New Startup", "region" => "EU", "cell" => "cell_eu1",
        "projects" => [%w[app public]] }
    ].freeze

    # Each user belongs to one organization; `member_of` lists the private projects they may see.
    USERS = [
      { "username" => "alice", "name" => "Alice (EU)", "organization" => "my-company", "member_of" => %w[my-company/secret] },
      { "username" => "bob", "name" => "Bob (EU, no access to secret)", "organization" => "my-company", "member_of" => [] },
      { "username" => "sid", "name" => "Sid (US)", "organization" => "gitlab-org", "member_of" => [] },
      { "username" => "wile", "name" => "Wile (US)", "organization" => "acme-corp", "member_of" => %w[acme-corp/billing] },
      { "username" => "nina", "name" => "Nina (EU)", "organization" => "new-startup", "member_of" => [] }
    ].freeze

    SCHEMA = [
      <<~SQL,
        CREATE TABLE cells (
          name TEXT PRIMARY KEY,
          region TEXT NOT NULL,
          created_at TEXT NOT NULL
        )
      SQL
      <<~SQL,
        CREATE TABLE routes (
          id INTEGER PRIMARY KEY,
          path TEXT NOT NULL,
          cell_id TEXT NOT NULL REFERENCES cells(name),
          source_type TEXT NOT NULL,
          source_id INTEGER NOT NULL,
          visibility TEXT NOT NULL DEFAULT 'public',
          name TEXT NOT NULL,
          UNIQUE (source_type, path)
        )
      SQL
      "CREATE INDEX index_routes_on_path ON routes (path)",
      <<~SQL,
        CREATE TABLE users (
          id INTEGER PRIMARY KEY,
          username TEXT NOT NULL UNIQUE,
          name TEXT NOT NULL,
          organization TEXT NOT NULL
        )
      SQL
      <<~SQL,
        CREATE TABLE members (
          user_id INTEGER NOT NULL REFERENCES users(id),
          project_path TEXT NOT NULL,
          PRIMARY KEY (user_id, project_path)
        )
      SQL
      <<~SQL
        CREATE TABLE sessions (
          token TEXT PRIMARY KEY,
          user_id INTEGER NOT NULL REFERENCES users(id),
          created_at TEXT NOT NULL
        )
      SQL
    ].freeze

    TABLES = %w[sessions members users routes cells].freeze

    module_function

    # Drops and recreates the tables, then inserts the seed's rows.
    # @return [Hash] counts of what was inserted
    def run(db)
      db.execute("PRAGMA journal_mode = WAL") if db.adapter == :sqlite
      db.transaction do
        TABLES.each { |t| db.execute("DROP TABLE IF EXISTS #{t}") }
        SCHEMA.each { |sql| db.execute(sql) }
        CELLS.each { |c| db.execute("INSERT INTO cells (name, region, created_at) VALUES (?, ?, ?)", c["name"], c["region"], c["created_at"]) }

        ids = Hash.new(0)
        route = lambda do |path, cell, type, visibility, name|
          ids[:route] += 1
          ids[type] += 1
          db.execute("INSERT INTO routes (id, path, cell_id, source_type, source_id, visibility, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     ids[:route], path, cell, type, ids[type], visibility, name)
        end

        ORGANIZATIONS.each do |org|
          route.call(org["path"], org["cell"], "Organization", "public", org["name"])
          route.call(org["path"], org["cell"], "Namespace", "public", org["name"]) # the organization's top-level group
          org["projects"].each { |project, visibility| route.call("#{org["path"]}/#{project}", org["cell"], "Project", visibility, project) }
        end

        USERS.each_with_index do |u, i|
          org = ORGANIZATIONS.find { |o| o["path"] == u["organization"] } or raise "unknown organization #{u["organization"]}"
          db.execute("INSERT INTO users (id, username, name, organization) VALUES (?, ?, ?, ?)", i + 1, u["username"], u["name"], u["organization"])
          route.call(u["username"], org["cell"], "User", "public", u["name"]) # the personal namespace lives with the organization
          u["member_of"].each { |p| db.execute("INSERT INTO members (user_id, project_path) VALUES (?, ?)", i + 1, p) }
        end
        { cells: CELLS.size, routes: ids[:route], users: USERS.size }
      end
    end

    # The newest cell: the default for unknown routes.
    def default_cell(db)
      row = db.first("SELECT name FROM cells ORDER BY created_at DESC, name DESC LIMIT 1") or raise DB::Error, "the cells table is empty"
      row["name"]
    end

    # @return [Array<Hash>] name, region, created_at, oldest first
    def cells(db)
      db.query("SELECT name, region, created_at FROM cells ORDER BY created_at, name")
    end
  end
end

if $PROGRAM_NAME == __FILE__
  db = Demo::DB.connect(database: ARGV[0] || ENV.fetch("DATABASE", nil), url: ENV.fetch("DATABASE_URL", nil))
  counts = Demo::Seed.run(db)
  puts "seeded #{db.describe}: #{counts.map { |k, v| "#{v} #{k}" }.join(", ")}; default cell #{Demo::Seed.default_cell(db)}"
end

# frozen_string_literal: true

require "securerandom"
require "time"
require_relative "db"

module Demo
  module Cell
    # Queries over the global tables (routes, users, members, sessions) that every cell reads.
    class Directory
      # Namespaces at the top of a route path: groups and users' personal namespaces.
      TOP_LEVEL_TYPES = %w[Namespace User].freeze

      # The session cookie's value: `cell-<cell>-<token>`; the router's session_cookie pattern reads the
      # cell from this prefix for paths that carry no routable key.
      SESSION_VALUE = /\Acell-([A-Za-z0-9_.]+)-([0-9a-f]{32})\z/

      attr_reader :db

      def initialize(db)
        @db = db
      end

      # The resolver the learn endpoint and the middleware call: which cell owns an entity, or nil.
      # Route paths resolve through their top-level namespace: an organization, with all its groups,
      # projects and users, lives on one cell.
      #
      # @param entity [Gitlab::Cells::Learn::Entity]
      # @return [String, nil]
      def resolve(entity)
        key = entity.key.to_s
        case entity.kind
        when :route_path then top_level_cell(key.split("/").first.to_s)
        when :organization_path then cell_of("Organization", key)
        when :username then cell_of("User", key)
        when :project_id then cell_by_id("Project", key)
        when :namespace_id then cell_by_id("Namespace", key)
        when :user_id then cell_by_id("User", key)
        end
      end

      def to_proc
        method(:resolve).to_proc
      end

      # @return [String, nil] the cell owning a top-level namespace (group or user)
      def top_level_cell(name)
        return nil if name.empty?

        row = db.first("SELECT cell_id FROM routes WHERE lower(path) = lower(?) AND source_type IN ('Namespace', 'User') LIMIT 1", name)
        row && row["cell_id"]
      end

      # @return [Hash, nil] a route row (path, cell_id, source_type, source_id, visibility, name)
      def route(type, path)
        db.first("SELECT * FROM routes WHERE source_type = ? AND lower(path) = lower(?)", type, path)
      end

      def top_level(name)
        db.first("SELECT * FROM routes WHERE source_type IN ('Namespace', 'User') AND lower(path) = lower(?) LIMIT 1", name)
      end

      # Projects (public, or private where the user is a member) under a namespace prefix, or all.
      def visible_projects(user, prefix: nil)
        rows = if prefix
                 db.query("SELECT * FROM routes WHERE source_type = 'Project' AND lower(path) LIKE lower(?) ORDER BY path", "#{prefix}/%")
               else
                 db.query("SELECT * FROM routes WHERE source_type = 'Project' ORDER BY path")
               end
        rows.select { |r| can_read?(user, r) }
      end

      # @param user [Hash, nil]
      # @param project [Hash] a route row of a project
      def can_read?(user, project)
        return true if project["visibility"] == "public"
        return false unless user

        !db.first("SELECT 1 AS ok FROM members WHERE user_id = ? AND lower(project_path) = lower(?)", user["id"], project["path"]).nil?
      end

      def user(username)
        db.first("SELECT * FROM users WHERE lower(username) = lower(?)", username)
      end

      # @param cookie [String, nil] the _gitlab_session cookie value
      # @return [Hash, nil] the signed-in user
      def session_user(cookie)
        m = SESSION_VALUE.match(cookie.to_s) or return nil
        db.first("SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token = ?", m[2])
      end

      # Signs a user in: a new session row; the cookie names the cell of the user's organization.
      # @return [String] the cookie value
      def create_session(user)
        token = SecureRandom.hex(16)
        db.execute("INSERT INTO sessions (token, user_id, created_at) VALUES (?, ?, ?)", token, user["id"], Time.now.utc.iso8601)
        "cell-#{home_cell(user)}-#{token}"
      end

      def destroy_session(cookie)
        m = SESSION_VALUE.match(cookie.to_s) or return
        db.execute("DELETE FROM sessions WHERE token = ?", m[2])
      end

      def home_cell(user)
        row = route("Organization", user["organization"])
        row ? row["cell_id"] : top_level_cell(user["username"])
      end

      private

      def cell_of(type, path)
        row = route(type, path)
        row && row["cell_id"]
      end

      def cell_by_id(type, id)
        return nil unless id.match?(/\A[1-9][0-9]{0,17}\z/)

        row = db.first("SELECT cell_id FROM routes WHERE source_type = ? AND source_id = ?", type, Integer(id))
        row && row["cell_id"]
      end
    end
  end
end

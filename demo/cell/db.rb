# frozen_string_literal: true

module Demo
  # The demo's database: SQLite (a file, through Debian's ruby-sqlite3) by default, PostgreSQL when
  # DATABASE_URL is given (through ruby-pg). Queries use `?` placeholders; rows come back as Hashes
  # with String keys. One connection per thread: Puma's threads are long-lived and neither driver's
  # connection may be shared between threads.
  module DB
    class Error < StandardError; end

    # @param database [String, nil] an SQLite file path
    # @param url [String, nil] a postgres:// URL (wins over database)
    def self.connect(database: nil, url: nil)
      if url && !url.empty?
        Postgres.new(url)
      elsif database && !database.empty?
        SQLite.new(database)
      else
        raise Error, "no database: set DATABASE (an SQLite file path) or DATABASE_URL (postgres://...)"
      end
    end

    # Thread-local connections over one configuration.
    class Base
      def initialize
        @key = :"demo_db_#{object_id}"
        @all = []
        @lock = Mutex.new
      end

      # @return [Array<Hash{String=>Object}>]
      def query(sql, *binds)
        run(connection, sql, binds)
      end

      # @return [Hash, nil] the first row
      def first(sql, *binds)
        query(sql, *binds).first
      end

      def execute(sql, *binds)
        query(sql, *binds)
        nil
      end

      def transaction
        execute("BEGIN")
        result = yield
        execute("COMMIT")
        result
      rescue StandardError
        begin
          execute("ROLLBACK")
        rescue StandardError
          nil
        end
        raise
      end

      def close
        @lock.synchronize do
          @all.each { |c| close_connection(c) }
          @all.clear
        end
      end

      private

      def connection
        Thread.current[@key] ||= open_connection.tap { |c| @lock.synchronize { @all << c } }
      end
    end

    class SQLite < Base
      attr_reader :path

      def initialize(path)
        super()
        begin
          require "sqlite3"
        rescue LoadError
          raise Error, "the sqlite3 gem is not installed (Debian: apt-get install ruby-sqlite3)"
        end
        @path = path
      end

      def describe
        "sqlite:#{@path}"
      end

      def adapter
        :sqlite
      end

      private

      def open_connection
        db = SQLite3::Database.new(@path)
        db.results_as_hash = true
        db.busy_timeout = 5000
        db.execute("PRAGMA foreign_keys = ON")
        db
      rescue SQLite3::Exception => e
        raise Error, "cannot open SQLite database #{@path}: #{e.message}"
      end

      def run(conn, sql, binds)
        conn.execute(sql, binds).map { |row| row.reject { |k, _| k.is_a?(Integer) } }
      rescue SQLite3::Exception => e
        raise Error, "#{e.class.name.split("::").last}: #{e.message} (in: #{sql.strip[0, 80]})"
      end

      def close_connection(conn)
        conn.close unless conn.closed?
      end
    end

    class Postgres < Base
      def initialize(url)
        super()
        begin
          require "pg"
        rescue LoadError
          raise Error, "DATABASE_URL is set but the pg gem is not installed (Debian: apt-get install ruby-pg); " \
                       "unset DATABASE_URL to use SQLite"
        end
        @url = url
      end

      def describe
        "postgresql:#{@url.sub(%r{//[^@/]*@}, "//***@")}"
      end

      def adapter
        :postgres
      end

      private

      def open_connection
        conn = PG.connect(@url)
        conn.set_notice_processor { |_| nil }
        conn
      rescue PG::Error => e
        raise Error, "cannot connect to #{describe}: #{e.message.strip}"
      end

      def run(conn, sql, binds)
        n = 0
        pg_sql = sql.gsub("?") { "$#{n += 1}" }
        result = binds.empty? ? conn.exec(pg_sql) : conn.exec_params(pg_sql, binds)
        result.to_a
      rescue PG::Error => e
        raise Error, "#{e.class.name.split("::").last}: #{e.message.strip} (in: #{sql.strip[0, 80]})"
      end

      def close_connection(conn)
        conn.close unless conn.finished?
      end
    end
  end
end

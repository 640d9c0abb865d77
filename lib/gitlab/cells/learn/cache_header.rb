# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # A `X-Gitlab-Cell-Cache` header value that cannot be written or read: an unknown or
      # repeated attribute, a missing path or cell, a bad percent escape, an invalid cell name...
      class InvalidHeaderError < Error; end

      # The `X-Gitlab-Cell-Cache` response header a cell adds so that the router learns, from a
      # normal response, which cell serves a path:
      #
      #   X-Gitlab-Cell-Cache: path=/gitlab-org/gitlab-test; cell=cell_0
      #   X-Gitlab-Cell-Cache: path=/-/profile; cell=cell_0; exact
      #
      # `path` is the prefix the router may cache (only that exact path with `exact`), written as the
      # request path's own bytes, the form Rails routes on: escapes stay as they are, never decoded nor
      # encoded again (`path=/api/v4/projects/gitlab-org%2Fgitlab`). It is made of RFC 3986 `pchar`s and
      # `/`; a path holding `;` or `,` is written in double quotes (`path="/a;b"`). Nothing else can be
      # in a request path the router forwards (no space, quote, backslash, `?`, `#`, raw non-ASCII), so
      # no escaping scheme is needed. The router parses the same grammar; both test suites run the cases
      # of router/tests/data/cache_header_cases.json.
      module CacheHeader
        # The header's name.
        NAME = "X-Gitlab-Cell-Cache"

        # What a cell name must look like.
        CELL_NAME = /\A[A-Za-z0-9_.-]{1,64}\z/

        # The longest path (in bytes) a header may carry.
        MAX_PATH_BYTES = 8192

        # The longest header value accepted by {.parse}: a longest path plus the attributes.
        MAX_LENGTH = MAX_PATH_BYTES + 128

        # A path as it may be written bare: `/`, then RFC 3986 pchars (but `;` and `,`) and `/`,
        # escapes well-formed.
        BARE_PATH = %r{\A/(?:[A-Za-z0-9\-._~!$&'()*+=:@/]|%\h\h)*\z}
        private_constant :BARE_PATH

        # A path as it may be written in double quotes: `;` and `,` too.
        QUOTED_PATH = %r{\A/(?:[A-Za-z0-9\-._~!$&'()*+=:@/;,]|%\h\h)*\z}
        private_constant :QUOTED_PATH

        # A parsed header value. Frozen.
        class Value
          # @return [String] the path (decoded, UTF-8, starts with `/`)
          attr_reader :path
          # @return [String] the cell that serves it
          attr_reader :cell

          # @param path [String]
          # @param cell [String]
          # @param exact [Boolean]
          def initialize(path:, cell:, exact:)
            @path = path.frozen? ? path : path.dup.freeze
            @cell = cell.frozen? ? cell : cell.dup.freeze
            @exact = exact ? true : false
            freeze
          end

          # Only this exact path may be cached, not the paths below it.
          def exact?
            @exact
          end

          # @return [String] the header value, as {CacheHeader.format} writes it
          def to_s
            CacheHeader.format(path: path, cell: cell, exact: exact?)
          end

          # @return [Hash{Symbol=>Object}]
          def to_h
            { path: path, cell: cell, exact: exact? }
          end

          def ==(other)
            other.is_a?(Value) && to_h == other.to_h
          end
          alias eql? ==

          def hash
            to_h.hash
          end

          def inspect
            "#<#{self.class.name} path=#{path.inspect} cell=#{cell.inspect}#{exact? ? " exact" : ""}>"
          end
        end

        module_function

        # Writes a header value.
        #
        # @param path [String] the path to cache, as the request path's bytes (escapes kept): starts with
        #   `/`, RFC 3986 pchars and `/` only, at most {MAX_PATH_BYTES} bytes
        # @param cell [String] a cell name matching {CELL_NAME}
        # @param exact [Boolean] whether only this exact path may be cached
        # @return [String] e.g. `"path=/gitlab-org/gitlab-test; cell=cell_0"`; the path in double quotes
        #   when it holds `;` or `,`
        # @raise [InvalidHeaderError] for a path or cell that cannot be advertised
        def format(path:, cell:, exact: false)
          check_path(path)
          check_chars(path, quoted: true)
          check_cell(cell)
          value = +"path=#{BARE_PATH.match?(path) ? path : "\"#{path}\""}; cell=#{cell}"
          value << "; exact" if exact
          value.freeze
        end

        # Reads a header value written by {.format}. Attributes are separated by `;` with optional
        # spaces or tabs around them; names are lower-case; the path is kept as written (its escapes
        # are the request path's own, never decoded).
        #
        # @param value [String]
        # @return [Value]
        # @raise [InvalidHeaderError] naming what is wrong
        def parse(value)
          raise InvalidHeaderError, "#{NAME} must be a String, not #{value.class}" unless value.is_a?(String)
          raise InvalidHeaderError, "#{NAME} is #{value.bytesize} bytes, over the limit of #{MAX_LENGTH}" if value.bytesize > MAX_LENGTH
          raise InvalidHeaderError, "#{NAME} is not valid #{value.encoding}: #{value.inspect}" unless value.valid_encoding?
          raise InvalidHeaderError, "#{NAME} is empty" if value.strip.empty?

          attributes = parse_attributes(value)
          path = attributes.fetch("path") { raise InvalidHeaderError, "#{NAME} #{value.inspect} has no path attribute" }
          cell = attributes.fetch("cell") { raise InvalidHeaderError, "#{NAME} #{value.inspect} has no cell attribute" }
          check_cell(cell)
          Value.new(path: read_path(path), cell: cell, exact: attributes.key?("exact"))
        end

        # The header value for a classification result, or nil when the router must not cache it.
        #
        # @param result [Result] from {Classifier#learn}
        # @param cell [String] the cell that serves the request
        # @return [String, nil] nil when the result is not cacheable or its path cannot be written (over
        #   {MAX_PATH_BYTES}, or holding bytes no request path the router forwards holds)
        # @raise [InvalidHeaderError] for an invalid cell name
        def for_result(result, cell:)
          return nil unless result.cacheable?
          return nil if result.path.bytesize > MAX_PATH_BYTES || !QUOTED_PATH.match?(result.path)

          format(path: result.path, cell: cell, exact: result.exact?)
        end

        # @param name [Object]
        # @return [Boolean] whether name is a String that is a valid cell name
        def valid_cell?(name)
          name.is_a?(String) && CELL_NAME.match?(name)
        end

        # @api private
        def read_path(raw)
          quoted = raw.start_with?('"')
          raise InvalidHeaderError, "#{NAME} path #{raw.inspect} has an unterminated quote" if quoted && (raw.size < 2 || !raw.end_with?('"'))

          path = quoted ? raw[1...-1] : raw
          check_path(path)
          check_chars(path, quoted: quoted)
          path
        end

        # @api private
        def check_chars(path, quoted:)
          return if (quoted ? QUOTED_PATH : BARE_PATH).match?(path)

          allowed = quoted ? %r{\A[A-Za-z0-9\-._~!$&'()*+=:@/;,]\z} : %r{\A[A-Za-z0-9\-._~!$&'()*+=:@/]\z}
          bad = path.b.scan(/%\h\h|%.{0,2}|./mn).find { |t| t.start_with?("%") ? !t.match?(/\A%\h\h\z/n) : !allowed.match?(t) }&.force_encoding(Encoding::UTF_8)
          raise InvalidHeaderError, "#{NAME} path #{path.inspect} has a bad percent escape #{bad}" if bad&.start_with?("%")
          raise InvalidHeaderError, "#{NAME} path #{path.inspect} contains #{bad.inspect}: write a path with ; or , in double quotes" if [";",
                                                                                                                                          ","].include?(bad)

          raise InvalidHeaderError,
                "#{NAME} path #{path.inspect} contains #{bad.inspect}, which no request path holds (escapes are written as the request has them)"
        end

        # @api private
        def parse_attributes(value)
          # Attributes end at a `;` outside double quotes (a quoted path may hold `;`).
          parts = [+""]
          quoted = false
          value.each_char do |char|
            quoted = !quoted if char == '"'
            char == ";" && !quoted ? parts << +"" : parts.last << char
          end
          raise InvalidHeaderError, "#{NAME} #{value.inspect} has an unterminated quote" if quoted

          parts.each_with_object({}) do |part, attributes|
            name, sep, raw = part.strip.partition("=")
            name = name.strip
            raise InvalidHeaderError, "#{NAME} #{value.inspect} has an empty attribute" if name.empty?
            raise InvalidHeaderError, "#{NAME} #{value.inspect} has an unknown attribute #{name.inspect}" unless %w[path cell exact].include?(name)
            raise InvalidHeaderError, "#{NAME} #{value.inspect} repeats the attribute #{name}" if attributes.key?(name)
            raise InvalidHeaderError, "#{NAME} #{value.inspect}: exact takes no value" if name == "exact" && !sep.empty?
            raise InvalidHeaderError, "#{NAME} #{value.inspect}: #{name} needs a value (#{name}=...)" if name != "exact" && sep.empty?

            attributes[name] = raw.strip
          end
        end

        # @api private
        def check_path(path)
          raise InvalidHeaderError, "#{NAME} path must be a String, not #{path.class}" unless path.is_a?(String)
          raise InvalidHeaderError, "#{NAME} path #{path.inspect} does not start with /" unless path.start_with?("/")
          raise InvalidHeaderError, "#{NAME} path is not valid #{path.encoding}: #{path.inspect}" unless path.valid_encoding?
          return if path.bytesize <= MAX_PATH_BYTES

          raise InvalidHeaderError, "#{NAME} path is #{path.bytesize} bytes, over the limit of #{MAX_PATH_BYTES}"
        end

        # @api private
        def check_cell(cell)
          return if valid_cell?(cell)

          raise InvalidHeaderError, "#{NAME}: invalid cell name #{cell.inspect}: expected 1 to 64 of A-Z a-z 0-9 _ . -"
        end

        private_class_method :read_path, :check_chars, :parse_attributes, :check_path, :check_cell
      end
    end
  end
end

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
      # `path` is the prefix the router may cache (only that exact path with `exact`), percent-encoded:
      # every byte outside the unreserved set (`A-Z a-z 0-9 - . _ ~`) and `/` is written `%XX` (upper-case
      # hex), so `%`, `;`, `,`, `=`, spaces and control characters never appear raw. A path that is itself
      # percent-encoded (`/a%2Fb`) round-trips byte for byte (`path=/a%252Fb`).
      module CacheHeader
        # The header's name.
        NAME = "X-Gitlab-Cell-Cache"

        # What a cell name must look like.
        CELL_NAME = /\A[A-Za-z0-9_.-]{1,64}\z/.freeze

        # The longest path (in bytes, decoded) a header may carry.
        MAX_PATH_BYTES = 8192

        # The longest header value accepted by {.parse}: a fully escaped longest path plus the attributes.
        MAX_LENGTH = (MAX_PATH_BYTES * 3) + 128

        # Bytes written as themselves; everything else is percent-encoded.
        UNESCAPED = /[^A-Za-z0-9\-._~\/]/n.freeze
        private_constant :UNESCAPED

        # What a path value may contain raw in a header: unreserved bytes, `/` and escapes.
        PATH_VALUE = %r{\A[A-Za-z0-9\-._~/%]*\z}.freeze
        private_constant :PATH_VALUE

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
            "#<#{self.class.name} path=#{path.inspect} cell=#{cell.inspect}#{exact? ? ' exact' : ''}>"
          end
        end

        module_function

        # Writes a header value.
        #
        # @param path [String] the path to cache; starts with `/`, valid UTF-8, at most {MAX_PATH_BYTES} bytes
        # @param cell [String] a cell name matching {CELL_NAME}
        # @param exact [Boolean] whether only this exact path may be cached
        # @return [String] e.g. `"path=/gitlab-org/gitlab-test; cell=cell_0"`
        # @raise [InvalidHeaderError] for a path or cell that cannot be advertised
        def format(path:, cell:, exact: false)
          check_path(path)
          check_cell(cell)
          value = +"path=#{escape(path)}; cell=#{cell}"
          value << "; exact" if exact
          value.freeze
        end

        # Reads a header value written by {.format}. Attributes are separated by `;` with optional
        # spaces or tabs around them; names are lower-case.
        #
        # @param value [String]
        # @return [Value]
        # @raise [InvalidHeaderError] naming what is wrong
        def parse(value)
          raise InvalidHeaderError, "#{NAME} must be a String, not #{value.class}" unless value.is_a?(String)
          if value.bytesize > MAX_LENGTH
            raise InvalidHeaderError, "#{NAME} is #{value.bytesize} bytes, over the limit of #{MAX_LENGTH}"
          end
          raise InvalidHeaderError, "#{NAME} is not valid #{value.encoding}: #{value.inspect}" unless value.valid_encoding?
          raise InvalidHeaderError, "#{NAME} is empty" if value.strip.empty?

          attributes = parse_attributes(value)
          path = attributes.fetch("path") { raise InvalidHeaderError, "#{NAME} #{value.inspect} has no path attribute" }
          cell = attributes.fetch("cell") { raise InvalidHeaderError, "#{NAME} #{value.inspect} has no cell attribute" }
          check_cell(cell)
          Value.new(path: unescape(path), cell: cell, exact: attributes.key?("exact"))
        end

        # The header value for a classification result, or nil when the router must not cache it.
        #
        # @param result [Result] from {Classifier#classify}
        # @param cell [String] the cell that serves the request
        # @return [String, nil] nil when the result is not cacheable or its path is over {MAX_PATH_BYTES}
        # @raise [InvalidHeaderError] for an invalid cell name
        def for_result(result, cell:)
          return nil unless result.cacheable?
          return nil if result.path.bytesize > MAX_PATH_BYTES

          format(path: result.path, cell: cell, exact: result.exact?)
        end

        # @param name [Object]
        # @return [Boolean] whether name is a String that is a valid cell name
        def valid_cell?(name)
          name.is_a?(String) && CELL_NAME.match?(name)
        end

        # @api private
        def escape(path)
          path.b.gsub(UNESCAPED) { |byte| Kernel.format("%%%02X", byte.ord) }
        end

        # @api private
        def unescape(raw)
          unless PATH_VALUE.match?(raw)
            bad = raw[/[^A-Za-z0-9\-._~\/%]/]
            raise InvalidHeaderError, "#{NAME} path #{raw.inspect} contains #{bad.inspect}, which must be percent-encoded"
          end

          path = raw.b.gsub(/%(..?)?/n) do
            hex = Regexp.last_match(1)
            raise InvalidHeaderError, "#{NAME} path #{raw.inspect} has a bad percent escape %#{hex}" unless hex&.match?(/\A\h\h\z/)

            hex.to_i(16).chr
          end
          path.force_encoding(Encoding::UTF_8)
          raise InvalidHeaderError, "#{NAME} path #{raw.inspect} does not decode to valid UTF-8" unless path.valid_encoding?

          check_path(path)
          path
        end

        # @api private
        def parse_attributes(value)
          value.split(";", -1).each_with_object({}) do |part, attributes|
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

        private_class_method :escape, :unescape, :parse_attributes, :check_path, :check_cell
      end
    end
  end
end

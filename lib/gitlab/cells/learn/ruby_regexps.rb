# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # Decides, with Ruby's own `Regexp`, the routes whose requirements use Onigmo constructs no
      # DFA can express (back-references, `\p{...}`, `\K`, `(?~...)`, conditionals, `\R`, `\X`,
      # non-ASCII characters in classes, named groups...). The native automaton widens such a
      # construct to "any bytes", so it proposes every path Ruby could accept; this object runs
      # the route's regexp, built as Journey builds it (`Path::Pattern::AnchoredRegexp`), on each
      # candidate and reads the parameters as `Path::Pattern::MatchData` does: parameter `x` is
      # capture `offsets[x - 1] + x`, where the offsets count each requirement's own groups. With
      # a named group in the regexp Ruby captures only named groups, so the same arithmetic gives
      # Rails' (surprising) answer: `/(?<n>ab)+/` yields `id: "ab"` and loses the format.
      #
      # Built by {Classifier} when the table has such routes; immutable, so shared across threads.
      class RubyRegexps
        # One route's regexp and its parameters' capture numbers.
        Entry = Struct.new(:regexp, :captures)

        # @param route_definitions [Array<Hash>] {Classifier#route_definitions}
        # @return [RubyRegexps, nil] nil when no route needs Ruby
        def self.for(route_definitions)
          hosted = route_definitions.select { |r| r["host_regex"] }
          hosted.empty? ? nil : new(hosted)
        end

        # @param hosted [Array<Hash>] route definitions with their `host_regex`
        # @raise [InvalidRouteError] when Ruby itself refuses the regexp
        def initialize(hosted)
          @entries = hosted.to_h { |r| [r["index"], entry(r)] }.freeze
          freeze
        end

        # @param index [Integer] the route
        # @param path [String] the normalized path
        # @return [Array<Array(Integer, Integer), nil>, nil] each parameter's byte span, or nil
        #   when the route's regexp does not match
        def call(index, path)
          entry = @entries.fetch(index)
          subject = path.dup.force_encoding(Encoding::UTF_8)
          subject.force_encoding(Encoding::BINARY) unless subject.valid_encoding?
          match = match(entry.regexp, subject)
          return nil unless match

          entry.captures.map do |group|
            next nil if group >= match.size || match.begin(group).nil?

            [subject[0, match.begin(group)].bytesize, subject[0, match.end(group)].bytesize]
          end
        end

        private

        # A regexp with non-ASCII characters cannot run on a path that is not UTF-8; no
        # request path with such bytes can match it, so none does.
        def match(regexp, subject)
          regexp.match(subject)
        rescue Encoding::CompatibilityError
          nil
        end

        def entry(route)
          host = route["host_regex"]
          regexp = Regexp.new(host["source"])
          # Path::Pattern#offsets: groups of each requirement, counted as Ruby counts them alone.
          offsets = host["requirements"].reduce([0]) do |acc, requirement|
            groups = requirement ? Regexp.new("#{requirement}|").match("").size - 1 : 0
            acc << (acc.last + groups)
          end
          Entry.new(regexp, Array.new(host["requirements"].size) { |i| offsets[i] + i + 1 }).freeze
        rescue RegexpError => e
          raise InvalidRouteError, "route #{route["index"]} (#{route["path"]}): Ruby refuses its regexp: #{e.message}"
        end
      end
    end
  end
end

# frozen_string_literal: true

require "digest"
require "fileutils"
require "json"

module Gitlab
  module Cells
    module Learn
      # The classifier of a running Rails application, kept in step with its routes.
      #
      # Why a holder rather than a {Classifier}: the learn {Endpoint} is mounted *inside*
      # `config/routes.rb`, while those routes are being drawn, so it cannot be given a classifier
      # compiled from them. It is given this object instead, which answers like a {Classifier}
      # ({#learn}, {#recognize}, {#matches}, {#routes}, {#default_cell}...) and builds the real one
      # on first use, after the routes are drawn:
      #
      # - from the build-time artifact ({#compile!}, `rake cells:compile`) when its digest equals
      #   the digest of the routes the application has drawn now (no route is recompiled);
      # - otherwise by compiling the routes, with a warning naming both digests: an artifact
      #   from another commit or another `RAILS_ENV` must never classify with stale routes.
      #
      # {#routes_changed!} (called by the {Railtie} from `reloader.to_prepare`, which runs after
      # Rails' routes reloader in development) makes the next use compare digests again and
      # recompile if the routes changed.
      #
      # The digest is SHA-256 over the gem version, the extracted route table as JSON and the
      # learn rules as JSON: what the classifier is a function of.
      #
      # Thread-safe: rebuilding is serialized by a Mutex; readers see either the old or the new
      # frozen {Classifier}.
      #
      # @example config/routes.rb
      #   mount Gitlab::Cells::Learn::Endpoint.new(
      #     classifier: Gitlab::Cells::Learn::Railtie.classifier,
      #     resolver: ->(entity) { Cells::Resolver.cell_name_for(entity.kind, entity.key) }
      #   ) => Gitlab::Cells::Learn::Endpoint::MOUNT_PATH
      class RailsClassifier
        # First line of an artifact file: this, a space, the 64 hex digits of the digest, "\n";
        # then the {Classifier#dump} bytes.
        MAGIC = "gitlab-cells-learn-rails-artifact/1"

        # @param app [Rails::Application, #routes] the application (its `routes` are read on each build)
        # @param artifact [String, Pathname, nil] where `rake cells:compile` writes the artifact;
        #   nil: always compile at first use
        # @param rules [Hash, String, Pathname, nil] learn rules: a Hash, JSON, or a path to a JSON
        #   file; nil: GitLab's defaults (rules/gitlab.json)
        # @param engine [Symbol] see {Classifier::ENGINES}
        # @param constraints [:rails, nil] `:rails`: dynamic constraints decided by the routes' own
        #   Rails objects ({RailsConstraints}, rebuilt with every build); nil: all hold unless a block says
        # @param host [String] the `Host` of the requests {RailsConstraints} builds
        # @param logger [#warn, #info, nil] told when the artifact is stale, missing or corrupt
        # @raise [ArgumentError] for an app without routes
        # @raise [InvalidRulesError] for rules that are not JSON or not a file
        def initialize(app, artifact: nil, rules: nil, engine: :auto, constraints: nil, host: "localhost", logger: nil)
          raise ArgumentError, "expected a Rails application (responding to #routes), got #{app.class}" unless app.respond_to?(:routes)
          raise ArgumentError, "constraints must be :rails or nil, not #{constraints.inspect}" unless [nil, :rails].include?(constraints)

          @use_rails_constraints = constraints == :rails
          @host = host
          @app = app
          @artifact = artifact&.to_s
          @rules_json = self.class.rules_json(rules)
          @engine = engine
          @logger = logger
          @lock = Mutex.new
          @classifier = nil
          @digest = nil
          @stale = true
        end

        # @return [String, nil] the artifact path
        attr_reader :artifact

        # Reads rules given as a Hash, a JSON String or a path to a JSON file.
        #
        # @return [String, nil] JSON, or nil for GitLab's defaults
        # @raise [InvalidRulesError]
        def self.rules_json(rules)
          case rules
          when nil then nil
          when Hash then JSON.generate(rules)
          when Pathname then read_rules(rules.to_s)
          when String
            rules.lstrip.start_with?("{") ? rules : read_rules(rules)
          else
            raise InvalidRulesError, "rules must be a Hash, a JSON String or a path to a JSON file, not #{rules.class}"
          end
        end

        def self.read_rules(path)
          raise InvalidRulesError, "no learn rules file at #{path}" unless File.file?(path)

          File.read(path)
        end
        private_class_method :read_rules

        # The digest that names a route table with its rules.
        #
        # @param routes_json [String] the extracted routes ({RailsRoutes.extract}) as JSON
        # @param rules_json [String, nil]
        # @return [String] 64 hex digits
        def self.digest(routes_json, rules_json)
          sha = Digest::SHA256.new
          sha << "gitlab-cells-learn #{VERSION}\0" << routes_json << "\0" << (rules_json || "gitlab-default-rules")
          sha.hexdigest
        end

        # Reads an artifact file.
        #
        # @return [Array(String, String)] the digest and the {Classifier#dump} bytes
        # @raise [CorruptArtifactError] for a file this gem did not write
        def self.read_artifact(path)
          bytes = File.binread(path)
          header, body = bytes.split("\n", 2)
          magic, digest = header.to_s.split(" ", 2)
          unless magic == MAGIC && digest&.match?(/\A\h{64}\z/) && body
            raise CorruptArtifactError, "#{path} is not a Rails classifier artifact (expected a first line \"#{MAGIC} <sha256>\")"
          end

          [digest, body]
        end

        # Compiles the application's routes and writes the artifact (what `rake cells:compile` does).
        #
        # @param path [String, Pathname] where to write; the configured artifact by default
        # @return [Hash] `:path`, `:digest`, `:routes`, `:bytes`
        # @raise [ArgumentError] when there is no path
        def compile!(path = @artifact)
          raise ArgumentError, "no artifact path: configure config.cells_learn.artifact or give one" unless path

          constraints, routes_json = extract
          digest = self.class.digest(routes_json, @rules_json)
          classifier = Classifier.new(routes: routes_json, rules: @rules_json, engine: @engine, constraints: constraints)
          bytes = "#{MAGIC} #{digest}\n".b + classifier.dump.b
          FileUtils.mkdir_p(File.dirname(path.to_s))
          tmp = "#{path}.tmp-#{Process.pid}"
          File.binwrite(tmp, bytes)
          File.rename(tmp, path.to_s) # atomic: a booting server never reads half a file
          install(classifier, digest)
          { path: path.to_s, digest: digest, routes: classifier.routes.size, bytes: bytes.bytesize }
        end

        # Builds the classifier now (from the artifact when it is current). Call it after
        # `Rails.application.initialize!` (the routes are drawn by then) in a preloading Puma
        # master, so that it is paid for once and shared by the forked workers.
        #
        # @return [Classifier]
        def load!
          @lock.synchronize { build }
        end

        # Marks the classifier as possibly stale: the next use extracts the routes again, and
        # recompiles only when their digest changed.
        #
        # @return [void]
        def routes_changed!
          @stale = true
        end

        # @return [Classifier] the current classifier, built or refreshed if needed
        def classifier
          return @classifier unless @stale || @classifier.nil?

          load!
        end

        # @return [String, nil] the digest of the routes the current classifier was built from
        attr_reader :digest

        # The default cell comes from the rules alone, so it is answered without the routes: the
        # {Endpoint} asks for it while `config/routes.rb` is still being drawn.
        #
        # @return [String]
        def default_cell
          @default_cell ||= Classifier.new(routes: [], rules: @rules_json).default_cell
        end

        # @see Classifier#learn
        def learn(method, path_info, &)
          classifier.learn(method, path_info, &)
        end

        # @see Classifier#recognize
        def recognize(method, path_info, &)
          classifier.recognize(method, path_info, &)
        end

        # @see Classifier#matches
        def matches(method, path_info)
          classifier.matches(method, path_info)
        end

        # @see Classifier#routes
        def routes
          classifier.routes
        end

        # @see Classifier#route
        def route(index)
          classifier.route(index)
        end

        # @see Classifier#rules
        def rules
          classifier.rules
        end

        # @see Classifier#dump
        def dump
          classifier.dump
        end

        def inspect
          "#<#{self.class.name} artifact=#{@artifact.inspect} digest=#{@digest&.slice(0, 12).inspect} " \
            "#{@classifier ? "routes=#{@classifier.routes.size}" : "not built"}>"
        end

        private

        # @return [Array(RailsConstraints or nil, String)] the constraints and the routes as JSON,
        #   from one walk of the route set
        def extract
          if @use_rails_constraints
            constraints = RailsConstraints.new(@app.routes, host: @host)
            [constraints, JSON.generate(constraints.routes_json)]
          else
            [nil, JSON.generate(RailsRoutes.extract(@app.routes))]
          end
        end

        # Called under the lock.
        def build
          return @classifier if @classifier && !@stale

          constraints, routes_json = extract
          digest = self.class.digest(routes_json, @rules_json)
          @stale = false
          # The same routes, but the constraint objects are those of the routes drawn now.
          return install(@classifier.with_constraints(constraints), digest) if @classifier && digest == @digest

          if @classifier
            info("the routes changed (#{@digest[0, 12]} -> #{digest[0, 12]}): recompiled")
          elsif (loaded = from_artifact(digest, constraints))
            return install(loaded, digest)
          end
          install(Classifier.new(routes: routes_json, rules: @rules_json, engine: @engine, constraints: constraints), digest)
        end

        def from_artifact(digest, constraints)
          return nil unless @artifact

          unless File.file?(@artifact)
            warn("no artifact at #{@artifact} (run `rake cells:compile` at build time): compiling the routes at boot")
            return nil
          end

          written, bytes = self.class.read_artifact(@artifact)
          if written != digest
            warn("the artifact #{@artifact} was compiled from other routes or rules (digest #{written[0, 12]}, " \
                 "the application's is #{digest[0, 12]}): recompiling; run `rake cells:compile` in the build")
            return nil
          end
          Classifier.load(bytes, constraints: constraints)
        rescue CorruptArtifactError => e
          warn("#{e.message}: recompiling")
          nil
        end

        def install(classifier, digest)
          @digest = digest
          @classifier = classifier
        end

        def warn(message)
          @logger&.warn("[gitlab-cells-learn] #{message}")
        end

        def info(message)
          @logger&.info("[gitlab-cells-learn] #{message}")
        end
      end
    end
  end
end

# frozen_string_literal: true

require "json"

module Gitlab
  module Cells
    # Classifies requests for GitLab Cells exactly as the Rails router would, and answers the
    # router's pre-flight question `GET /api/v4/cells/learn?method=M&path_info=P`.
    #
    # @example
    #   classifier = Gitlab::Cells::Learn::Classifier.from_rails(Rails.application.routes)
    #   result = classifier.learn("GET", "/gitlab-org/gitlab/-/issues")
    #   result.source  # => :routable
    #   result.path    # => "/gitlab-org/gitlab"
    #   result.entity  # => #<Entity kind=:route_path key="gitlab-org/gitlab">
    module Learn
    end
  end
end

require_relative "learn/version"
require_relative "learn/errors"
# Before the native library: its init looks up Result::FromNative, which `learn` allocates directly.
require_relative "learn/result"

# The native library: installed by RubyGems into the gem's extension dir (on the load path), or
# copied next to this file's lib/ root by `rake compile` during development.
begin
  require "gitlab_cells_learn"
rescue LoadError => e
  dev = File.expand_path("../../gitlab_cells_learn.so", __dir__)
  raise Gitlab::Cells::Learn::Error, "the native library is not built (#{e.message}); run `rake compile`" unless File.exist?(dev)

  require dev
end

require_relative "learn/ruby_regexps"
require_relative "learn/classifier"
require_relative "learn/rails_routes"
require_relative "learn/grape_routes"
require_relative "learn/route_table"
require_relative "learn/endpoint"
require_relative "learn/cache_header"
require_relative "learn/middleware"
require_relative "learn/coverage"
require_relative "learn/rails_constraints"
require_relative "learn/rails_classifier"
require_relative "learn/route_snapshot"
require_relative "learn/log_replay"
require_relative "learn/invalidation"
# In a Rails application (Bundler requires the gem after Rails): the rake tasks and the
# application's classifier. Outside Rails nothing of Rails is loaded.
require_relative "learn/railtie" if defined?(::Rails::Railtie)

# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "gitlab/cells/learn"
require "json"

CORPUS_DIR = File.expand_path("../../shared/corpus", __dir__)
REPO_ROOT = File.expand_path("..", __dir__)

Dir[File.join(__dir__, "support", "**", "*.rb")].sort.each { |f| require f }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.order = :defined
  config.expect_with(:rspec) { |c| c.syntax = :expect }
end

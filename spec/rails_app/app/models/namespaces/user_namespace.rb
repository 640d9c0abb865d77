# frozen_string_literal: true

module Namespaces
  class UserNamespace < Namespace
  end
end

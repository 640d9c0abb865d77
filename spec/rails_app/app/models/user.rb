# frozen_string_literal: true

class User < ApplicationRecord
  belongs_to :namespace, class_name: "Namespaces::UserNamespace"

  def self.find_by_full_path(full_path, follow_redirects: false)
    found = Route.find_source(full_path, "Namespace", follow_redirects: follow_redirects)
    found.is_a?(Namespaces::UserNamespace) ? find_by(namespace_id: found.id) : nil
  end
end

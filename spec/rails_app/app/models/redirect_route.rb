# frozen_string_literal: true

# An old full path of a renamed namespace or project.
class RedirectRoute < ApplicationRecord
  belongs_to :source, polymorphic: true
end

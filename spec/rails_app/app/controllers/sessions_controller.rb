# frozen_string_literal: true

# Devise's Devise::SessionsController place.
class SessionsController < ApplicationController
  actions :new, :create, :destroy
end
